"""Built-in example systems, made from data that ships in pip packages."""
