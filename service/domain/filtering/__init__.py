"""The filter and order language of ListInvoices (PRODUCT section 7). Pure: text in, typed tree out.

Modules: ``fields`` (what can be filtered and its spellings), ``tree`` (the typed result), ``parser``
(filter text to tree), ``order`` (order_by text to sort keys).

One grammar for Google AIP-160 and Codat's query spelling:

    expr       := term ( binop term | term )*          juxtaposition is AND (AIP-160)
    binop      := '||' | '&&' | 'AND' | 'OR'
    term       := ('NOT' | '!') term | '(' expr ')' | '{' expr '}' | field comparator value
    comparator := '=' | '==' | '!=' | '<' | '<=' | '>' | '>=' | ':' | '~'
    value      := "quoted" | 'quoted' | bare-word | null

Precedence, loosest first: `||`, `&&`, `AND`, `OR`, `NOT`. So the keyword spelling keeps AIP-160's rule
(OR binds tighter than AND) and the symbol spelling keeps the usual one (&& binds tighter than ||).
Field names are snake_case or camelCase paths (`customer_ref.id`, `customerRef.id`); enum values are
case-insensitive (`paid`, `PartiallyPaid`, `INVOICE_STATUS_PAID`); `:` and `~` mean "contains" on text
and "equals" elsewhere; a calendar date compared with a timestamp field covers that whole UTC day.
"""

from service.domain.filtering.fields import FIELDS, METADATA_PREFIX, PUSH_FIELDS, FieldSpec, Kind
from service.domain.filtering.order import DEFAULT_ORDER, MAX_ORDER_KEYS, parse_order_by
from service.domain.filtering.parser import MAX_COMPARISONS, MAX_DEPTH, MAX_FILTER_LENGTH, parse_filter
from service.domain.filtering.tree import And, Comparison, DayRange, FilterError, Node, Not, Or, Value

__all__ = [
    "DEFAULT_ORDER",
    "FIELDS",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_KEYS",
    "METADATA_PREFIX",
    "PUSH_FIELDS",
    "And",
    "Comparison",
    "DayRange",
    "FieldSpec",
    "FilterError",
    "Kind",
    "Node",
    "Not",
    "Or",
    "Value",
    "parse_filter",
    "parse_order_by",
]
