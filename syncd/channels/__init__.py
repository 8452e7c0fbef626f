"""One module per delivery channel; each provides a Sender (see base.py)."""
