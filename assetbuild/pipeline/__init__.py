"""The driver: manifest -> plan -> generate -> process -> place -> publish (docs/architecture.md).

``run.build`` plans (``plan``), realises what changed through an executor (``realise``,
``executor``, ``worker``) and publishes what it left on disk (``publish``). Nothing below this
package imports it.
"""
