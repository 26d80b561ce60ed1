"""The one table: a polymorphic base model with generic keys and overloaded GSIs."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pynamodb.attributes import DiscriminatorAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.config import get_settings

_settings = get_settings()


class _Meta:
    table_name = _settings.table_name
    region = _settings.region
    host = _settings.dynamodb_host


class Gsi1(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Gsi3(GlobalSecondaryIndex["Item"]):
    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class Item(Model):
    """Every item of the table. Entities subclass it with a discriminator."""

    Meta = _Meta

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    gsi1 = Gsi1()
    gsi2 = Gsi2()
    gsi3 = Gsi3()

    def upsert(self, actions: list[Action], condition: Condition | None = None) -> Any:
        """UpdateItem that may create the item: sets the discriminator too."""
        kind = type(self)
        return self.update(actions=[kind.type.set(kind), *actions], condition=condition)


def transaction() -> TransactWrite:
    """A TransactWriteItems on the table's own connection settings."""
    return TransactWrite(connection=_connection())


@lru_cache(maxsize=1)
def _connection() -> Connection:
    return Connection(region=_Meta.region, host=_Meta.host)


def cancellation_codes(error: TransactWriteError) -> list[str | None]:
    """Per-item reasons ('ConditionalCheckFailed', None, ...) of a cancelled transaction."""
    reasons = error.cancellation_reasons or []
    return [reason.code if reason else None for reason in reasons]
