"""Exercise checkers, one module per chapter (``dplearn.exercises.ch01`` ...).

A checker takes the reader's answer (a function, a number, an array or a choice), tests it
against a reference on fresh random inputs, and returns a :class:`~dplearn.exercises.checking.Result`
that shows ✓ or ✗ with a hint. It never prints the reference answer.
"""

from dplearn.exercises.checking import Result

__all__ = ["Result"]
