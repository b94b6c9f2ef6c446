//! The comparison of what two services gave one user: bucket by bucket, then row by row.
//!
//! A bucket's checksum and count are not compared across the services. Both sum the bucket's whole history:
//! a REMOVE's checksum hashes the source table's id, which is each instance's own
//! (`hashDelete(replicaIdToSubkey(table.id, …))`, PostgresPersistedBatch.ts), and a row updated twice on one
//! side but copied once by the other's initial snapshot holds the same data. Each side's checksum is checked
//! against its own operations instead (replica.rs), and the rows are compared: a row is its object type and
//! id, its data compared as JSON values. Row data is `JSON.stringify` of the same columns on both sides.

use std::collections::BTreeMap;

use serde_json::Value;

use super::replica::{BucketSnapshot, Snapshot};
use crate::sync_client::Checksum;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    A,
    B,
}

impl Side {
    pub(crate) const BOTH: [Side; 2] = [Side::A, Side::B];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Difference {
    /// The bucket is on one side only.
    BucketOnlyOn {
        side: Side,
        bucket: String,
        rows: usize,
    },
    /// The side's operations do not add up to its checkpoint's checksum: a client would reject the bucket.
    Inconsistent {
        side: Side,
        bucket: String,
        announced: Checksum,
        received: Checksum,
    },
    /// A row (`type/id`) of a bucket on both sides is on one side only.
    RowOnlyOn {
        side: Side,
        bucket: String,
        row: String,
        data: Vec<String>,
    },
    /// A row on both sides with other data.
    RowDiffers {
        bucket: String,
        row: String,
        a: Vec<String>,
        b: Vec<String>,
    },
}

/// A bucket's name without the sync config version that `versioned_bucket_ids` puts in front
/// (`3#lists["u1"]`, HydrationState.ts): each instance numbers its own sync configs.
pub(crate) fn bucket_key(name: &str) -> &str {
    match name.split_once('#') {
        Some((version, rest))
            if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => name,
    }
}

/// The buckets of a snapshot by their key, with their names as the service sent them.
pub(crate) fn by_key(snapshot: &Snapshot) -> BTreeMap<&str, (&str, &BucketSnapshot)> {
    snapshot
        .buckets
        .iter()
        .map(|(name, bucket)| (bucket_key(name), (name.as_str(), bucket)))
        .collect()
}

/// The rows a client holds of a bucket, by `type/id`: each with its data (more than one when several
/// source rows land on one output row), in a stable order.
pub(crate) fn rows(bucket: &BucketSnapshot) -> BTreeMap<String, Vec<String>> {
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in &bucket.rows {
        rows.entry(format!("{}/{}", row.object_type, row.object_id))
            .or_default()
            .push(row.data.clone().unwrap_or_else(|| "null".to_string()));
    }
    for data in rows.values_mut() {
        data.sort_by_cached_key(|data| json(data).to_string());
    }
    rows
}

fn json(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
}

fn same_data(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json(a) == json(b))
}

pub(crate) fn compare(a: &Snapshot, b: &Snapshot) -> Vec<Difference> {
    let sides = [by_key(a), by_key(b)];
    let mut keys: Vec<&str> = sides.iter().flat_map(|side| side.keys().copied()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut differences = Vec::new();
    for key in keys {
        let found = [sides[0].get(key), sides[1].get(key)];
        for side in Side::BOTH {
            if let Some((name, bucket)) = found[side.index()] {
                if bucket.sum != bucket.checksum {
                    differences.push(Difference::Inconsistent {
                        side,
                        bucket: name.to_string(),
                        announced: bucket.checksum,
                        received: bucket.sum,
                    });
                }
            }
        }
        match found {
            [Some((_, a)), Some((_, b))] => compare_rows(key, a, b, &mut differences),
            [Some((_, bucket)), None] | [None, Some((_, bucket))] => {
                let side = if found[0].is_some() { Side::A } else { Side::B };
                differences.push(Difference::BucketOnlyOn {
                    side,
                    bucket: key.to_string(),
                    rows: rows(bucket).len(),
                });
            }
            [None, None] => unreachable!("the key came from one of the sides"),
        }
    }
    differences
}

fn compare_rows(key: &str, a: &BucketSnapshot, b: &BucketSnapshot, out: &mut Vec<Difference>) {
    let (a, b) = (rows(a), rows(b));
    for (row, data_a) in &a {
        match b.get(row) {
            None => out.push(Difference::RowOnlyOn {
                side: Side::A,
                bucket: key.to_string(),
                row: row.clone(),
                data: data_a.clone(),
            }),
            Some(data_b) if !same_data(data_a, data_b) => out.push(Difference::RowDiffers {
                bucket: key.to_string(),
                row: row.clone(),
                a: data_a.clone(),
                b: data_b.clone(),
            }),
            Some(_) => {}
        }
    }
    for (row, data_b) in &b {
        if !a.contains_key(row) {
            out.push(Difference::RowOnlyOn {
                side: Side::B,
                bucket: key.to_string(),
                row: row.clone(),
                data: data_b.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::replica::Row;
    use super::*;

    fn bucket(checksum: u32, sum: u32, rows: &[(&str, &str)]) -> BucketSnapshot {
        BucketSnapshot {
            checksum: Checksum(checksum),
            count: rows.len() as u64,
            sum: Checksum(sum),
            ops: rows.len() as u64,
            rows: rows
                .iter()
                .map(|(id, data)| Row {
                    object_type: "t".into(),
                    object_id: (*id).into(),
                    data: Some((*data).into()),
                })
                .collect(),
        }
    }

    fn snapshot(buckets: Vec<(&str, BucketSnapshot)>) -> Snapshot {
        Snapshot {
            last_op_id: "1".into(),
            buckets: buckets
                .into_iter()
                .map(|(name, bucket)| (name.to_string(), bucket))
                .collect(),
        }
    }

    #[test]
    fn bucket_versions_are_ignored_but_not_other_hashes() {
        assert_eq!(bucket_key(r#"12#lists["u1"]"#), r#"lists["u1"]"#);
        assert_eq!(bucket_key(r#"lists["a#1"]"#), r#"lists["a#1"]"#);
        assert_eq!(bucket_key("#x"), "#x");
        assert_eq!(bucket_key("global[]"), "global[]");
    }

    #[test]
    fn rows_are_compared_as_json_and_histories_are_not() {
        // Other checksums (other histories), other versions, keys in another order: the same rows.
        let a = snapshot(vec![(
            "1#b[]",
            bucket(10, 10, &[("1", r#"{"x":1,"y":"s"}"#)]),
        )]);
        let b = snapshot(vec![(
            "4#b[]",
            bucket(99, 99, &[("1", r#"{"y":"s","x":1}"#)]),
        )]);
        assert_eq!(compare(&a, &b), []);
        // 1 and 1.0 are an integer and a real in the client's SQLite: different.
        let b = snapshot(vec![(
            "b[]",
            bucket(99, 99, &[("1", r#"{"x":1.0,"y":"s"}"#)]),
        )]);
        assert!(matches!(
            &compare(&a, &b)[..],
            [Difference::RowDiffers { .. }]
        ));
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let a = snapshot(vec![
            ("b[]", bucket(5, 5, &[("1", "{}"), ("2", r#"{"v":1}"#)])),
            ("only_a[]", bucket(0, 0, &[("9", "{}")])),
        ]);
        let b = snapshot(vec![(
            "b[]",
            bucket(6, 7, &[("2", r#"{"v":2}"#), ("3", "{}")]),
        )]);
        assert_eq!(
            compare(&a, &b),
            [
                Difference::Inconsistent {
                    side: Side::B,
                    bucket: "b[]".into(),
                    announced: Checksum(6),
                    received: Checksum(7)
                },
                Difference::RowOnlyOn {
                    side: Side::A,
                    bucket: "b[]".into(),
                    row: "t/1".into(),
                    data: vec!["{}".into()]
                },
                Difference::RowDiffers {
                    bucket: "b[]".into(),
                    row: "t/2".into(),
                    a: vec![r#"{"v":1}"#.into()],
                    b: vec![r#"{"v":2}"#.into()]
                },
                Difference::RowOnlyOn {
                    side: Side::B,
                    bucket: "b[]".into(),
                    row: "t/3".into(),
                    data: vec!["{}".into()]
                },
                Difference::BucketOnlyOn {
                    side: Side::A,
                    bucket: "only_a[]".into(),
                    rows: 1
                },
            ]
        );
    }
}
