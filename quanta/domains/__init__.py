"""Domain packages: what makes an adapter an expert in one field.

Each domain is a sibling package with the same parts: a generator of verifiable
problems with a fixed held-out split, an answer checker, and the datasets it ships
(``quanta.domains.physics``). The generic dataset formats stay in ``quanta.data``.
"""
