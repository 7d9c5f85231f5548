"""tfambient: visual representations learned from the ambient sound of videos."""

__version__ = "0.1.0"
