// Package esql is the ES|QL front end: it parses a detection rule's ES|QL
// query, compiles it against the schema's field mappings, and evaluates it
// with Elasticsearch's semantics, split the way trailwatch runs a rule at
// the edge.
//
// # Driving a Program
//
//	p, err := esql.Compile(schema, query) // err: *matcher.SyntaxError with the place
//	pf := p.Prefilter()                   // into the candidate index, like any query
//	// for each candidate record (pf.Match is true):
//	row, ok := p.Eval(fields, now)
//	// without STATS (!p.IsAggregating()): ok means one alert for the record,
//	// carrying row.Map(); with STATS: acc.Add(row) into the record's bucket.
//	acc := p.NewAcc()                  // one per (rule, time bucket)
//	b, _ := acc.MarshalBinary()        // stored; UnmarshalBinary reads it back
//	run.Merge(acc)                     // a run merges its window's buckets
//	rows := p.Results(run, runTime)    // one alert per row
//
// Eval runs the commands before the first STATS (the whole query when it
// has none) on one record; Results runs what follows STATS on the merged
// groups. NOW() is the time passed to Eval, or to Results after STATS.
// The row of an aggregating query is for Add, right away: it borrows the
// program's memory and the record's text, and Add copies what it keeps
// (see Row).
//
// # What is supported
//
// Commands: FROM (index patterns, METADATA _id, _index, _version), WHERE,
// EVAL, STATS ... BY (aggregations named or not, each with an optional
// WHERE filter), KEEP and DROP (with * patterns), RENAME (a AS b, b = a),
// SORT (ASC, DESC, NULLS FIRST/LAST), LIMIT, DISSECT (APPEND_SEPARATOR),
// GROK (one pattern), MV_EXPAND (after STATS).
//
// Expressions: null, booleans, integers, decimals, strings ("..." with
// \t \n \r \" \\, and """..."""), arrays of literals, time spans (1 hour,
// 7 days, ...), fields (dotted, `quoted`), AND, OR, NOT, comparisons, + - *
// / %, datetime ± time span, IN, LIKE and RLIKE (single or lists, NOT),
// IS [NOT] NULL, ::type casts.
//
// Functions: CASE, COALESCE, CONCAT, NOW, DATE_TRUNC, DATE_DIFF,
// STARTS_WITH, ENDS_WITH, CONTAINS, TO_LOWER, TO_UPPER, LENGTH, SUBSTRING,
// LOCATE, TRIM, LTRIM, RTRIM, SPLIT, FROM_BASE64, TO_BASE64, MV_COUNT,
// MV_FIRST, MV_LAST, MV_MIN, MV_MAX, MV_DEDUPE, MV_CONCAT, CIDR_MATCH,
// TO_STRING, TO_DOUBLE, TO_LONG, TO_INTEGER, TO_BOOLEAN, TO_DATETIME, TO_IP.
// Aggregations: COUNT, COUNT(*), COUNT_DISTINCT, VALUES, MIN, MAX, SUM, AVG.
//
// Anything else is refused when the rule loads, with its place: other
// commands and functions, query parameters, =~ and the match operator, a
// second STATS, expressions over aggregations (STATS x = AVG(y)::long),
// LIMIT before STATS, SORT then LIMIT or filtering after LIMIT in a query
// without STATS, MV_EXPAND before STATS, GROK with several patterns,
// reference keys in DISSECT, fields mapped as flattened, nested or
// geo_point, regular expressions Go's regexp has no counterpart for (see
// like.go and grok.go).
//
// # Semantics
//
// Field values are read as ES|QL reads doc values: only values the mapping
// indexed (no keyword past ignore_above), keywords and addresses sorted and
// deduplicated, numbers and dates sorted. A scalar function or operator is
// null when an argument is null or multi-valued (comparisons included, so a
// WHERE on a multi-valued field drops the row); NOT, AND and OR follow
// three-valued logic, and WHERE keeps only true. CASE treats a null or
// multi-valued condition as false; COALESCE and the MV_ functions take
// multi-valued input; conversions convert each value. DISSECT and GROK
// process each value of a multi-valued input. See the files for the
// Elasticsearch sources each part follows.
package esql
