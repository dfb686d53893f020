"""Building blocks of the read-only admin that stays fast on partitioned tables of millions of rows.

- `ReadOnlyAdmin`: nobody adds, changes or deletes audit evidence through the admin, not even
  a superuser; there are no bulk actions, and a POST to a change or delete URL is refused.
- `PartitionedPaginator`: never runs `COUNT(*)` over a whole table. An unfiltered list uses the
  planner's row estimate (`pg_class.reltuples` summed over the partitions); a filtered list
  counts exactly up to `EXACT_COUNT_LIMIT` rows and estimates beyond (EXPLAIN).
- `LightChangeList`: loads only the list columns, not the (up to 1 MiB) payloads.
- `ExactValueFilter` / `choices_filter`: list filters that need no query to draw themselves
  (Django's default filter for a plain CharField runs `SELECT DISTINCT` over the table).

Every filter matches a `(column, partition key)` index (audit migration 0003, embeddings 0002),
so the newest page of any filter reads one page of index entries. docs/ADMIN.md has the numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from psycopg import sql

#: A filtered list is counted exactly up to this many rows; above it the count is an estimate.
EXACT_COUNT_LIMIT = 1000
#: Deepest page offered. OFFSET n reads n index entries, so page 10,000 of a million-row list
#: costs seconds; an auditor narrows with a filter or a search instead.
MAX_PAGES = 200


class PartitionedPaginator(Paginator):
    """A paginator whose `count` costs one or two cheap queries on any table size."""

    def __init__(self, object_list: QuerySet[Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(object_list, *args, **kwargs)
        #: True when `count` is the planner's estimate rather than an exact number.
        self.is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        if not queryset.query.where:
            return self._unfiltered_count(queryset.model)
        # Bounded: the scan stops after EXACT_COUNT_LIMIT + 1 rows (ordering dropped: not needed).
        exact: int = queryset.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        if exact <= EXACT_COUNT_LIMIT:
            return exact
        self.is_estimate = True
        return max(exact, _planner_rows(queryset))

    def _unfiltered_count(self, model: type[Model]) -> int:
        # One query: the planner's estimate over every partition, plus an exact count bounded
        # by EXACT_COUNT_LIMIT so that a small or never-analysed table (reltuples = -1) still
        # shows its true size.
        # The table's own reltuples (a plain table) plus its partitions'. A partitioned
        # parent holds no rows; ANALYZE of it stores the whole table's total, counted already.
        statement = sql.SQL(
            "SELECT (SELECT coalesce(sum(greatest(reltuples, 0)), 0)::bigint FROM pg_class"
            "        WHERE relkind <> 'p' AND (oid = %s::regclass"
            "           OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass))),"
            "       (SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) AS bounded)"
        ).format(sql.Identifier(model._meta.db_table))
        with connection.cursor() as cursor:
            cursor.execute(
                statement.as_string(cursor.cursor.connection),
                [model._meta.db_table, model._meta.db_table, EXACT_COUNT_LIMIT + 1],
            )
            estimate, exact = cursor.fetchone()
        if exact <= EXACT_COUNT_LIMIT:
            return int(exact)
        self.is_estimate = True
        return max(int(exact), int(estimate))

    @cached_property
    def num_pages(self) -> int:
        return min(super().num_pages, MAX_PAGES)


def _planner_rows(queryset: QuerySet[Any]) -> int:
    plan = json.loads(queryset.order_by().explain(format="json"))
    return math.ceil(plan[0]["Plan"]["Plan Rows"])


class LightChangeList(ChangeList):
    """A changelist that loads only the list columns and always reads through a LIMIT."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        queryset = super().get_queryset(request, exclude_parameters)
        heavy = getattr(self.model_admin, "list_deferred_fields", ())
        return queryset.defer(*heavy) if heavy else queryset

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Django leaves a list that fits one page (or "show all") without a LIMIT. With one, the
        # plan stays an index walk of at most a page even when the count was an estimate.
        if not self.result_list.query.is_sliced:
            limit = self.list_max_show_all if self.show_all else self.list_per_page
            self.result_list = self.result_list[:limit]


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """View-only for everyone. `has_*_permission` False makes Django refuse the add, change
    and delete views (403) and POSTs to them, and hide every button that leads there."""

    actions = None
    show_full_result_count = False  # Django's "N total" is a full COUNT(*)
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per filter choice
    date_hierarchy = None  # its drill-down runs SELECT DISTINCT date_trunc(...) over the table
    list_per_page = 50
    paginator = PartitionedPaginator
    #: Columns deferred on the list page only (the detail page shows them).
    list_deferred_fields: Sequence[str] = ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LightChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Django allows any lookup on any local column (`?payload__icontains=`,
        # `?message__regex=`): unindexed scans, and broken patterns that fail in PostgreSQL.
        # Only the declared filters' own parameters pass; anything else answers 400.
        declared = self.get_list_filter(request) if request is not None else self.list_filter
        return lookup in filter_parameters(declared)


#: The query parameters a field's list filter uses (exact / boolean / choices / date filters).
FIELD_FILTER_LOOKUPS = ("exact", "isnull", "gte", "lt")


def filter_parameters(list_filter: Sequence[Any]) -> set[str]:
    """Every query parameter the declared list filters read."""
    parameters: set[str] = set()
    for item in list_filter:
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            parameters.add(str(item.parameter_name))
        else:
            field = item[0] if isinstance(item, tuple) else item
            parameters.update(f"{field}__{lookup}" for lookup in FIELD_FILTER_LOOKUPS)
    return parameters


class ExactValueFilter(admin.SimpleListFilter):
    """A text box that filters on `parameter_name = value` (exact, so index-backed).

    For open-ended columns such as namespace or model: listing their values would need a scan.
    """

    template = "admin/audit/exact_value_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # SimpleListFilter hides itself without lookups; the box needs none.
        return [("", "")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset

    def choices(self, changelist: Any) -> Iterator[Any]:
        # The form replaces the query string: the other filters, the search and the ordering
        # ride along as hidden inputs (the page number does not: a new filter starts at page 1).
        others = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key != self.parameter_name
            for value in values
        ]
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "others": others,
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


def exact_value_filter(field_name: str, title: str) -> type[ExactValueFilter]:
    return type(
        f"{field_name.title().replace('_', '')}ExactFilter",
        (ExactValueFilter,),
        {"title": title, "parameter_name": field_name},
    )


def choices_filter(field_name: str, title: str, values: Sequence[str]) -> type[admin.SimpleListFilter]:
    """A filter offering a fixed list of values (the serializer's enum), drawn without a query."""

    def lookups(self: admin.SimpleListFilter, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, value) for value in values]

    def queryset(self: admin.SimpleListFilter, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(**{field_name: self.value()}) if self.value() else queryset

    return type(
        f"{field_name.title().replace('_', '')}ChoicesFilter",
        (admin.SimpleListFilter,),
        {"title": title, "parameter_name": field_name, "lookups": lookups, "queryset": queryset},
    )
