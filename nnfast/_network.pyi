"""Forward/backward passes over a layer stack: the C layer table (the passes are cimport only)."""

from typing_extensions import Self, disjoint_base

from nnfast._spec import NetworkSpec

@disjoint_base
class Layout:
    spec: NetworkSpec
    def __new__(cls, spec: NetworkSpec) -> Self: ...
    @property
    def workspace_per_row(self) -> int: ...
    def workspace_size(self, rows: int) -> int: ...
