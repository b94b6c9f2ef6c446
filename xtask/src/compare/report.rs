//! The report: one line per user, then each difference; or all of it as JSON.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    time::Duration,
};

use serde_json::{json, Value};

use super::{
    diff::{self, Difference, Side},
    replica::{BucketSnapshot, Snapshot},
    Outcome, User,
};

/// Differences listed per user in the table; --json lists all.
const LISTED: usize = 20;
/// Characters of a row's data shown in the table.
const DATA_SHOWN: usize = 160;

pub(crate) struct Report {
    pub(crate) urls: [String; 2],
    pub(crate) settle: Duration,
    pub(crate) users: Vec<User>,
}

impl Report {
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        for side in Side::BOTH {
            let _ = writeln!(out, "{side}  {}", self.urls[side.index()]);
        }
        out.push_str(
            "Compared: the rows a client holds (type, id, data) per bucket; each side's checksums against its own operations.\n\n",
        );
        let width = self
            .users
            .iter()
            .map(|user| user.name.chars().count())
            .chain([4])
            .max()
            .unwrap_or(4)
            + 2;
        let _ = writeln!(
            out,
            "{:<width$}{:<14}{:<14}result",
            "user", "buckets A/B", "rows A/B"
        );
        for user in &self.users {
            let [a, b] = &user.latest;
            let pair = |count: fn(&Snapshot) -> usize| match (a, b) {
                (Some(a), Some(b)) => format!("{}/{}", count(a), count(b)),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "{:<width$}{:<14}{:<14}{}",
                user.name,
                pair(|snapshot| snapshot.buckets.len()),
                pair(client_rows),
                result(user, self.settle)
            );
        }
        for user in &self.users {
            let Outcome::Different { differences, .. } = &user.outcome else {
                continue;
            };
            let _ = writeln!(out, "\n{}:", user.name);
            for line in key_summary(differences) {
                let _ = writeln!(out, "  {line}");
            }
            for difference in differences.iter().take(LISTED) {
                let _ = writeln!(out, "  {}", describe(difference));
            }
            if differences.len() > LISTED {
                let _ = writeln!(
                    out,
                    "  … and {} more (--json lists every one)",
                    differences.len() - LISTED
                );
            }
        }
        let same = self.users.iter().filter(|user| user.same()).count();
        let _ = writeln!(
            out,
            "\n{same} of {} users got the same data from A and B.",
            self.users.len()
        );
        out
    }

    pub(crate) fn to_json(&self) -> Value {
        let users: Vec<Value> = self.users.iter().map(user_json).collect();
        let same = self.users.iter().filter(|user| user.same()).count();
        json!({
            "a": self.urls[0],
            "b": self.urls[1],
            "settle_secs": self.settle.as_secs(),
            "users": users,
            "same": same,
            "not_same": self.users.len() - same,
        })
    }
}

/// The rows the client's tables hold: distinct `type/id` over all buckets.
fn client_rows(snapshot: &Snapshot) -> usize {
    let rows: BTreeSet<(&str, &str)> = snapshot
        .buckets
        .values()
        .flat_map(|bucket| &bucket.rows)
        .map(|row| (row.object_type.as_str(), row.object_id.as_str()))
        .collect();
    rows.len()
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

fn result(user: &User, settle: Duration) -> String {
    match &user.outcome {
        Outcome::Same {
            settled_after: None,
        } => "same".to_string(),
        Outcome::Same {
            settled_after: Some(after),
        } => format!("same after waiting {} for new checkpoints", seconds(*after)),
        Outcome::Failed { side, reason } => format!("{side}: {reason}"),
        Outcome::Different {
            differences,
            waited,
            moved,
            ended,
        } => {
            let mut text = format!("{} difference(s)", differences.len());
            if settle.is_zero() {
                text.push_str(", not waited for (--settle 0)");
            } else {
                let _ = write!(
                    text,
                    "; still different after waiting {} (new checkpoints meanwhile: A {}, B {})",
                    seconds(*waited),
                    moved[0],
                    moved[1]
                );
            }
            for side in Side::BOTH {
                if let Some(why) = &ended[side.index()] {
                    let _ = write!(text, "; {side}'s stream ended while waiting: {why}");
                }
            }
            text
        }
    }
}

fn shown(data: &[String]) -> String {
    let text = data.join(" + ");
    if text.chars().count() <= DATA_SHOWN {
        return text;
    }
    let cut: String = text.chars().take(DATA_SHOWN).collect();
    format!("{cut}…")
}

fn describe(difference: &Difference) -> String {
    match difference {
        Difference::BucketOnlyOn { side, bucket, rows } => format!(
            "bucket {bucket}: only on {side} ({rows} rows), missing on {}",
            side.other()
        ),
        Difference::Inconsistent {
            side,
            bucket,
            announced,
            received,
        } => format!(
            "bucket {bucket}: on {side} the operations add up to {received} but the checkpoint says {announced} \
             (a client would drop the bucket and download it again)"
        ),
        Difference::RowOnlyOn {
            side,
            bucket,
            row,
            data,
        } => format!(
            "bucket {bucket}: row {row} only on {side}, missing on {}: {}",
            side.other(),
            shown(data)
        ),
        Difference::RowDiffers { bucket, row, a, b } => format!(
            "bucket {bucket}: row {row} differs: A {} | B {}",
            shown(a),
            shown(b)
        ),
    }
}

/// Per bucket with several differing rows, which keys differ and how often: a column missing on one side
/// in every row is sync config drift at a glance.
fn key_summary(differences: &[Difference]) -> Vec<String> {
    let mut buckets: BTreeMap<&str, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    for difference in differences {
        let Difference::RowDiffers { bucket, a, b, .. } = difference else {
            continue;
        };
        let (rows, keys) = buckets.entry(bucket).or_default();
        *rows += 1;
        let object = |data: &[String]| match data {
            [one] => serde_json::from_str::<serde_json::Map<String, Value>>(one).ok(),
            _ => None,
        };
        let (Some(a), Some(b)) = (object(a), object(b)) else {
            continue;
        };
        for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            let how = match (a.get(key), b.get(key)) {
                (Some(_), None) => "only on A",
                (None, Some(_)) => "only on B",
                (Some(x), Some(y)) if x != y => "different",
                _ => continue,
            };
            *keys.entry(format!("{key} {how}")).or_default() += 1;
        }
    }
    buckets
        .into_iter()
        .filter(|(_, (rows, _))| *rows > 1)
        .map(|(bucket, (rows, keys))| {
            let keys: Vec<String> = keys
                .into_iter()
                .map(|(key, count)| format!("{key} in {count}"))
                .collect();
            format!(
                "bucket {bucket}: {rows} rows differ; by key: {}",
                keys.join(", ")
            )
        })
        .collect()
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::A => "a",
        Side::B => "b",
    }
}

fn difference_json(difference: &Difference) -> Value {
    match difference {
        Difference::BucketOnlyOn { side, bucket, rows } => json!({
            "kind": "bucket_only_on", "side": side_name(*side), "bucket": bucket, "rows": rows,
        }),
        Difference::Inconsistent {
            side,
            bucket,
            announced,
            received,
        } => json!({
            "kind": "checksum_mismatch", "side": side_name(*side), "bucket": bucket,
            "checkpoint_checksum": announced.0, "operations_checksum": received.0,
        }),
        Difference::RowOnlyOn {
            side,
            bucket,
            row,
            data,
        } => json!({
            "kind": "row_only_on", "side": side_name(*side), "bucket": bucket, "row": row, "data": data,
        }),
        Difference::RowDiffers { bucket, row, a, b } => json!({
            "kind": "row_differs", "bucket": bucket, "row": row, "a": a, "b": b,
        }),
    }
}

fn bucket_json(name: &str, bucket: &BucketSnapshot) -> Value {
    json!({
        "name": name,
        "checksum": bucket.checksum.0,
        "count": bucket.count,
        "operations_checksum": bucket.sum.0,
        "operations": bucket.ops,
        "rows": diff::rows(bucket).len(),
    })
}

fn user_json(user: &User) -> Value {
    let sides: Vec<Value> = user
        .latest
        .iter()
        .map(|snapshot| match snapshot {
            Some(snapshot) => json!({
                "last_op_id": snapshot.last_op_id,
                "buckets": snapshot.buckets.len(),
                "rows": client_rows(snapshot),
            }),
            None => Value::Null,
        })
        .collect();
    let mut buckets = Vec::new();
    if let [Some(a), Some(b)] = &user.latest {
        let (a, b) = (diff::by_key(a), diff::by_key(b));
        let keys: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
        for key in keys {
            let side = |found: Option<&(&str, &BucketSnapshot)>| {
                found.map_or(Value::Null, |(name, bucket)| bucket_json(name, bucket))
            };
            buckets.push(json!({"bucket": key, "a": side(a.get(key)), "b": side(b.get(key))}));
        }
    }
    let mut value = json!({
        "user": user.name,
        "a": sides[0],
        "b": sides[1],
        "buckets": buckets,
    });
    let extra = match &user.outcome {
        Outcome::Same { settled_after } => json!({
            "result": "same",
            "waited_ms": settled_after.map(|after| after.as_millis() as u64),
        }),
        Outcome::Different {
            differences,
            waited,
            moved,
            ended,
        } => json!({
            "result": "different",
            "waited_ms": waited.as_millis() as u64,
            "new_checkpoints": {"a": moved[0], "b": moved[1]},
            "ended": {"a": ended[0], "b": ended[1]},
            "differences": differences.iter().map(difference_json).collect::<Vec<_>>(),
        }),
        Outcome::Failed { side, reason } => json!({
            "result": "failed",
            "failed": {"side": side_name(*side), "reason": reason},
        }),
    };
    if let (Value::Object(value), Value::Object(extra)) = (&mut value, extra) {
        value.extend(extra);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn differs(bucket: &str, a: &str, b: &str) -> Difference {
        Difference::RowDiffers {
            bucket: bucket.into(),
            row: "t/1".into(),
            a: vec![a.into()],
            b: vec![b.into()],
        }
    }

    #[test]
    fn keys_that_differ_are_summed_up_per_bucket_with_several_rows() {
        let differences = [
            differs("b", r#"{"id":1,"done":0}"#, r#"{"id":1}"#),
            differs(
                "b",
                r#"{"id":2,"done":1,"n":"x"}"#,
                r#"{"id":2,"n":"y","new":true}"#,
            ),
            differs("single", r#"{"id":3}"#, r#"{"id":4}"#),
        ];
        assert_eq!(
            key_summary(&differences),
            ["bucket b: 2 rows differ; by key: done only on A in 2, n different in 1, new only on B in 1"]
        );
    }
}
