"""A small generic DAG: stable topological order, and cycles reported as a path."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

N = TypeVar("N", bound=Hashable)


class CycleError(Exception):
    """The graph has a cycle; ``path`` lists it with the first node repeated at the end."""

    def __init__(self, path: list[object]) -> None:
        super().__init__(" -> ".join(map(str, path)))
        self.path = path


class DAG(Generic[N]):
    """Nodes in insertion order, edges from upstream to downstream."""

    def __init__(self) -> None:
        self._upstream: dict[N, list[N]] = {}

    def add(self, node: N, upstream: Iterable[N] = ()) -> None:
        deps = self._upstream.setdefault(node, [])
        for u in upstream:
            self._upstream.setdefault(u, [])
            if u not in deps:
                deps.append(u)

    @property
    def upstream(self) -> Mapping[N, list[N]]:
        return self._upstream

    def find_cycle(self) -> list[N] | None:
        """A cycle as a path ``[a, b, ..., a]`` following data flow, or None."""
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self._upstream, white)
        stack: list[N] = []

        def visit(node: N) -> list[N] | None:
            color[node] = grey
            stack.append(node)
            for dep in self._upstream[node]:
                if color[dep] == grey:
                    cycle = [*stack[stack.index(dep) :], dep]
                    # stack follows "depends on"; reverse it to read as data flow.
                    return list(reversed(cycle))
                if color[dep] == white:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            color[node] = black
            return None

        for node in self._upstream:
            if color[node] == white:
                found = visit(node)
                if found:
                    return found
        return None

    def topological(self) -> list[N]:
        """Upstream before downstream; among ready nodes, insertion order wins (stable plans).

        Raises:
            CycleError: with the cycle's path.
        """
        cycle = self.find_cycle()
        if cycle:
            raise CycleError(list(cycle))
        order: list[N] = []
        done: set[N] = set()
        pending = list(self._upstream)
        while pending:
            for node in pending:
                if all(d in done for d in self._upstream[node]):
                    order.append(node)
                    done.add(node)
                    pending.remove(node)
                    break
        return order
