"""The execution engine: sends accepted orders to venues and applies what venues report."""
