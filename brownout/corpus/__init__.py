"""Corpora from real traffic: import HAR and GoReplay files, derive golden sets from recordings."""
