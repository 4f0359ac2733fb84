"""Built-in example systems, made from data that ships in pip packages."""

from cryogeom.examples.adk import adk

__all__ = ["adk"]
