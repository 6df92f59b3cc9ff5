# nbgrader configuration for this repository: solutions/ is the source, lessons/ the release.
# Used by `supercourse lessons build`. Instructors get their own course directory
# (submissions, gradebook) from `supercourse course init DIR`; see the README.
from autograder.nbgrader_settings import configure_repository

configure_repository(get_config())  # noqa: F821 (traitlets provides get_config)
