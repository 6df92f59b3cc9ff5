"""The checks for each lesson: ``lessonNN.py`` holds pytest tests of that lesson's exercises."""
