"""Value rules that schema fields carry beside their type: `Annotated[int, Range(ge=1)]`.

`validate.check_section` checks them and the JSON Schema export writes them out, so a rule
is stated once, in the schema. The aliases below name the rules recipes use most.
"""

from __future__ import annotations

from typing import Annotated, Any


class Section:
    """Base of the recipe schemas: a class whose annotations are its keys. Plain classes, not
    dataclasses: they are never instantiated, and a @dataclass per section would cost the
    render path a few milliseconds per stack."""


class Range:
    """Numeric bounds; `also` lists values allowed outside them (-1: unlimited)."""

    __slots__ = ("also", "ge", "gt", "le")

    def __init__(
        self,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        also: tuple[Any, ...] = (),
    ) -> None:
        self.ge, self.gt, self.le, self.also = ge, gt, le, also

    def __repr__(self) -> str:
        return f"Range({self.text()})"

    def allows(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value in self.also:
            return True  # the type check reports non-numbers
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
        )

    def text(self) -> str:
        bounds = [(">=", self.ge), (">", self.gt), ("<=", self.le)]
        text = " and ".join(f"{op} {_num(v)}" for op, v in bounds if v is not None)
        extra = " or ".join(_num(v) for v in self.also)
        return f"{text} or {extra}" if extra else text


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


Count = Annotated[int, Range(ge=1)]  # batch sizes, node/device counts, parallel degrees
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]  # learning rates
NonNegativeFloat = Annotated[float, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, le=1)]  # dropout
Steps = Annotated[int, Range(ge=1, also=(-1,))]  # trainer steps where -1 means unlimited
