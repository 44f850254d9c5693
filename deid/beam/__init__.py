"""The Beam side of deid: composite transforms over the engine, which never imports Beam.

    ReadInstances -> DeidentifyInstances -> WriteInstances -> WriteManifest / WriteMetadata
                                                           / WriteLinkage
                              \\__________________\\_____________-> WriteQuarantine
"""

from deid.beam import s3fix
from deid.beam.deidentify import DeidentifyFn, DeidentifyInstances, Streaming
from deid.beam.keysource import KeySource
from deid.beam.linkage import WriteLinkage
from deid.beam.manifest import WriteManifest
from deid.beam.metadata import WriteMetadata
from deid.beam.options import DeidentifyOptions
from deid.beam.quarantine import WriteQuarantine
from deid.beam.read import ReadInstances
from deid.beam.write import WriteInstances

s3fix.patch()  # on the launcher and on every worker that imports deid.beam

__all__ = ["DeidentifyFn", "DeidentifyInstances", "DeidentifyOptions", "KeySource",
           "ReadInstances", "Streaming", "WriteInstances", "WriteLinkage", "WriteManifest",
           "WriteMetadata", "WriteQuarantine"]
