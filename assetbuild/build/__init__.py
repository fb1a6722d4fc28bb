"""Planning, caching and running a build: manifest -> plan -> generate -> process -> export."""
