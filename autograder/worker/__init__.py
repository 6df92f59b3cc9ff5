"""What runs on the untrusted side of grading: the worker that executes a learner's code.

Everything in this package is imported both by the trusted grader (for the
wire format) and, read-only, inside the sandboxed worker process. It imports
nothing from the rest of :mod:`autograder` (the checks never enter the sandbox)
and nothing from :mod:`supercourse` except by name at the learner's request.
"""
