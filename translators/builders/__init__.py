"""IR -> Envoy protobuf messages, one module per xDS type.

``clusters`` (CDS), ``endpoints`` (EDS), ``listeners`` (LDS), ``routes``
(RDS).  Builders are pure and deterministic: the same IR always gives
byte-identical messages, which is what lets versions be content hashes.
"""
