"""tf.train.Example's messages without TensorFlow: the same wire format, built here.

Processes that only make or rewrite records (Apache Beam workers, extraction) should not
pay for importing TensorFlow (seconds and hundreds of MB per process). These classes are
built from tensorflow/core/example/{feature,example}.proto, field for field, in a private
descriptor pool (so they never clash with TensorFlow's own classes when both are loaded),
and serialize to the same bytes as ``tf.train.Example``.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tensorflow"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfrecords_tools/example.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(name: str):
        return proto.message_type.add(name=name)

    def field(owner, name: str, number: int, kind: int, label: int, type_name: str = ""):
        added = owner.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = f".{_PACKAGE}.{type_name}"
        return added

    repeated, optional = _FIELD.LABEL_REPEATED, _FIELD.LABEL_OPTIONAL
    field(message("BytesList"), "value", 1, _FIELD.TYPE_BYTES, repeated)
    field(message("FloatList"), "value", 1, _FIELD.TYPE_FLOAT, repeated).options.packed = True
    field(message("Int64List"), "value", 1, _FIELD.TYPE_INT64, repeated).options.packed = True
    feature = message("Feature")
    for number, name in enumerate(("bytes_list", "float_list", "int64_list"), 1):
        kind = name.title().replace("_", "")
        field(feature, name, number, _FIELD.TYPE_MESSAGE, optional, kind).oneof_index = 0
    feature.oneof_decl.add(name="kind")
    features = message("Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    field(entry, "key", 1, _FIELD.TYPE_STRING, optional)
    field(entry, "value", 2, _FIELD.TYPE_MESSAGE, optional, "Feature")
    field(features, "feature", 1, _FIELD.TYPE_MESSAGE, repeated, "Features.FeatureEntry")
    field(message("Example"), "features", 1, _FIELD.TYPE_MESSAGE, optional, "Features")
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


BytesList = _message("BytesList")
FloatList = _message("FloatList")
Int64List = _message("Int64List")
Feature = _message("Feature")
Features = _message("Features")
Example = _message("Example")
