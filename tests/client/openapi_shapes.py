"""Compare the client's models with the schemas of an OpenAPI document, field by field.

Both sides are reduced to the same comparable shape: a field's JSON types (``integer``,
``number``, ``string``, ``boolean``, ``null``), its enum or const values, an array's item shape,
a map's value shape, and for an object its fields with their shapes and required-ness,
recursively. ``$ref`` is followed; ``anyOf`` / ``oneOf`` (nested or not) are one set of
alternatives. Titles, descriptions, examples, defaults, discriminators and constraints
(lengths, bounds, patterns) are left out: they do not change what an answer can hold.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JSONObject = dict[str, Any]
Shape = Any  # nested tuples / frozensets: hashable, comparable with ==


class Shapes:
    """Turns JSON schemas that refer to the definitions ``defs`` into comparable shapes."""

    def __init__(self, defs: JSONObject) -> None:
        self.defs = defs

    def resolve(self, schema: JSONObject) -> JSONObject:
        """``schema`` with its ``$ref`` followed (repeatedly)."""
        while "$ref" in schema:
            schema = self.defs[str(schema["$ref"]).rsplit("/", 1)[-1]]
        return schema

    def alternatives(self, schema: JSONObject) -> list[JSONObject]:
        """The flat list of alternatives of a (possibly nested) anyOf / oneOf."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options is None:
            return [schema]
        return [leaf for option in options for leaf in self.alternatives(option)]

    def shape(self, schema: JSONObject) -> Shape:
        """The comparable shape of ``schema``."""
        options = self.alternatives(schema)
        if len(options) == 1:
            return self._single(options[0])
        return ("union", frozenset(self._single(option) for option in options))

    def _single(self, schema: JSONObject) -> Shape:
        if "const" in schema:
            return ("const", schema["const"])
        if "enum" in schema:
            return ("enum", frozenset(schema["enum"]))
        kind = schema.get("type")
        if kind == "array":
            return ("array", self.shape(schema.get("items", {})))
        if kind == "object" or "properties" in schema:
            if "properties" in schema:
                return ("object", self.fields(schema))
            values = schema.get("additionalProperties", True)
            return ("map", "any" if values is True else self.shape(values))
        if kind is None:
            return "any"
        return kind

    def fields(self, schema: JSONObject) -> frozenset[tuple[str, bool, Shape]]:
        """Each property of an object schema: (name, required, shape)."""
        schema = self.resolve(schema)
        required = set(schema.get("required", []))
        return frozenset(
            (name, name in required, self.shape(prop))
            for name, prop in schema.get("properties", {}).items()
        )


def model_schema(model: type[BaseModel]) -> tuple[JSONObject, JSONObject]:
    """A model's JSON schema (validation mode) and its definitions."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    return schema, schema.get("$defs", {})


def differences(model: type[BaseModel], served: JSONObject, spec_defs: JSONObject) -> list[str]:
    """How ``model`` departs from the served object schema ``served``: one line per field."""
    mine, my_defs = model_schema(model)
    ours, theirs = Shapes(my_defs), Shapes(spec_defs)
    served = theirs.resolve(served)
    my_required = set(mine.get("required", []))
    served_required = set(served.get("required", []))
    problems: list[str] = []
    my_props: JSONObject = mine.get("properties", {})
    served_props: JSONObject = served.get("properties", {})
    name = model.__name__
    for field in sorted(set(my_props) - set(served_props)):
        problems.append(f"{name}.{field}: in the model, not served")
    for field in sorted(set(served_props) - set(my_props)):
        problems.append(f"{name}.{field}: served, not in the model")
    for field in sorted(set(my_props) & set(served_props)):
        if (field in my_required) != (field in served_required):
            said = "required" if field in served_required else "optional"
            problems.append(f"{name}.{field}: served as {said}, the model disagrees")
        mine_shape = ours.shape(my_props[field])
        served_shape = theirs.shape(served_props[field])
        problems += shape_differences(f"{name}.{field}", mine_shape, served_shape)
    return problems


def _brief(shape: Shape) -> str:
    """A short name of a shape for a message (an object by its field names)."""
    if isinstance(shape, tuple) and shape[0] == "object":
        return "object{" + ",".join(sorted(field for field, _, _ in shape[1])) + "}"
    return repr(shape)


def shape_differences(path: str, mine: Shape, served: Shape) -> list[str]:
    """Where two shapes differ, as lines naming the path down to the difference."""
    if mine == served:
        return []
    tagged = isinstance(mine, tuple) and isinstance(served, tuple)
    if tagged and mine[0] == served[0] == "object":
        mine_fields = {f: (req, shape) for f, req, shape in mine[1]}
        served_fields = {f: (req, shape) for f, req, shape in served[1]}
        lines = [
            f"{path}.{f}: in the model, not served"
            for f in sorted(set(mine_fields) - set(served_fields))
        ]
        lines += [
            f"{path}.{f}: served, not in the model"
            for f in sorted(set(served_fields) - set(mine_fields))
        ]
        for f in sorted(set(mine_fields) & set(served_fields)):
            (my_req, my_shape), (served_req, served_shape) = mine_fields[f], served_fields[f]
            if my_req != served_req:
                said = "required" if served_req else "optional"
                lines.append(f"{path}.{f}: served as {said}, the model disagrees")
            lines += shape_differences(f"{path}.{f}", my_shape, served_shape)
        return lines
    if tagged and mine[0] == served[0] == "array":
        return shape_differences(f"{path}[]", mine[1], served[1])
    if tagged and mine[0] == served[0] == "union":
        only_mine = {_brief(shape): shape for shape in mine[1] - served[1]}
        only_served = {_brief(shape): shape for shape in served[1] - mine[1]}
        if len(only_mine) == len(only_served) == 1:  # one alternative changed: say how
            return shape_differences(path, *only_mine.values(), *only_served.values())
        lines = []
        for brief in sorted(set(only_mine) & set(only_served)):  # the same fields, changed
            lines += shape_differences(f"{path}<{brief}>", only_mine[brief], only_served[brief])
        mine_left = sorted(set(only_mine) - set(only_served))
        served_left = sorted(set(only_served) - set(only_mine))
        if mine_left or served_left:
            lines.append(
                f"{path}: alternatives only in the model {mine_left}, only served {served_left}"
            )
        return lines
    return [f"{path}: model {mine!r} != served {served!r}"]
