//! What a client holds after reading a stream. Operations are applied as the SDK's core applies them
//! (powersync-sqlite-core, crates/core/src/sync/operations.rs), and at every `checkpoint_complete` each
//! bucket's operations must add up to the checksum its checkpoint announced, the check the SDKs make.
//!
//! - PUT replaces the row with the same `type/id/subkey` in its bucket; REMOVE deletes it; MOVE changes no
//!   row. Each adds its checksum to the bucket's sum (a superseded operation's checksum stays in the sum).
//! - CLEAR empties the bucket, and the sum starts again from the CLEAR's checksum.
//! - `checkpoint` names the buckets the client must hold (others are dropped); `checkpoint_diff` updates
//!   and removes some of them.

use std::collections::BTreeMap;

use crate::sync_client::{BucketChecksum, Checksum, Line, Op, OpKind};

#[derive(Default)]
pub(crate) struct Replica {
    target: Option<Target>,
    buckets: BTreeMap<String, BucketLog>,
}

struct Target {
    last_op_id: String,
    buckets: BTreeMap<String, BucketChecksum>,
}

#[derive(Clone, Default)]
struct BucketLog {
    rows: BTreeMap<String, Row>,
    sum: Checksum,
    ops: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) object_type: String,
    pub(crate) object_id: String,
    pub(crate) data: Option<String>,
}

/// A complete checkpoint as the client holds it.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) last_op_id: String,
    pub(crate) buckets: BTreeMap<String, BucketSnapshot>,
}

#[derive(Clone, Debug)]
pub(crate) struct BucketSnapshot {
    /// What the checkpoint announced.
    pub(crate) checksum: Checksum,
    pub(crate) count: u64,
    /// What the operations received add up to; equal to `checksum` unless the data is inconsistent.
    pub(crate) sum: Checksum,
    pub(crate) ops: u64,
    pub(crate) rows: Vec<Row>,
}

impl Replica {
    /// Applies one line; a `checkpoint_complete` hands back the checkpoint the client now holds. An error is a
    /// stream the SDK could not go on with.
    pub(crate) fn apply(&mut self, line: Line) -> Result<Option<Snapshot>, String> {
        match line {
            Line::Checkpoint {
                last_op_id,
                buckets,
            } => {
                let buckets: BTreeMap<_, _> = buckets
                    .into_iter()
                    .map(|bucket| (bucket.bucket.clone(), bucket))
                    .collect();
                self.buckets.retain(|name, _| buckets.contains_key(name));
                self.target = Some(Target {
                    last_op_id,
                    buckets,
                });
            }
            Line::CheckpointDiff {
                last_op_id,
                updated,
                removed,
            } => {
                let target = self
                    .target
                    .as_mut()
                    .ok_or("a checkpoint_diff came before any checkpoint")?;
                for name in removed {
                    target.buckets.remove(&name);
                    self.buckets.remove(&name);
                }
                for bucket in updated {
                    target.buckets.insert(bucket.bucket.clone(), bucket);
                }
                target.last_op_id = last_op_id;
            }
            Line::Data { bucket, ops } => {
                let log = self.buckets.entry(bucket).or_default();
                for op in ops {
                    log.apply(op);
                }
            }
            Line::CheckpointComplete { .. } => {
                let target = self
                    .target
                    .as_ref()
                    .ok_or("a checkpoint_complete came before any checkpoint")?;
                return Ok(Some(self.snapshot(target)));
            }
            Line::TokenExpiresIn(seconds) if seconds <= 0 => {
                return Err(
                    "the token expired (token_expires_in 0), so the service ended the stream"
                        .into(),
                )
            }
            Line::PartialCheckpointComplete | Line::TokenExpiresIn(_) | Line::Other => {}
        }
        Ok(None)
    }

    fn snapshot(&self, target: &Target) -> Snapshot {
        let empty = BucketLog::default();
        let buckets = target
            .buckets
            .iter()
            .map(|(name, announced)| {
                let log = self.buckets.get(name).unwrap_or(&empty);
                let bucket = BucketSnapshot {
                    checksum: announced.checksum,
                    count: announced.count,
                    sum: log.sum,
                    ops: log.ops,
                    rows: log.rows.values().cloned().collect(),
                };
                (name.clone(), bucket)
            })
            .collect();
        Snapshot {
            last_op_id: target.last_op_id.clone(),
            buckets,
        }
    }
}

impl BucketLog {
    fn apply(&mut self, op: Op) {
        self.ops += 1;
        let key = match (&op.object_type, &op.object_id) {
            (Some(object_type), Some(object_id)) => format!(
                "{object_type}/{object_id}/{}",
                op.subkey.as_deref().unwrap_or("null")
            ),
            _ => String::new(),
        };
        match op.kind {
            OpKind::Put => {
                self.rows.insert(
                    key,
                    Row {
                        object_type: op.object_type.unwrap_or_default(),
                        object_id: op.object_id.unwrap_or_default(),
                        data: op.data,
                    },
                );
                self.sum = self.sum.add(op.checksum);
            }
            OpKind::Remove => {
                self.rows.remove(&key);
                self.sum = self.sum.add(op.checksum);
            }
            OpKind::Move => self.sum = self.sum.add(op.checksum),
            OpKind::Clear => {
                self.rows.clear();
                self.sum = op.checksum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line::parse(text).unwrap()
    }

    #[test]
    fn operations_are_applied_as_the_sdk_applies_them() {
        let mut replica = Replica::default();
        let lines = [
            r#"{"checkpoint":{"last_op_id":"6","buckets":[{"bucket":"b","checksum":60,"count":6},{"bucket":"gone","checksum":0,"count":0}]}}"#,
            r#"{"data":{"bucket":"b","data":[
                {"op_id":"1","op":"PUT","object_type":"t","object_id":"1","data":"{\"v\":1}","checksum":1,"subkey":"x"},
                {"op_id":"2","op":"PUT","object_type":"t","object_id":"2","data":"{\"v\":2}","checksum":2,"subkey":"x"},
                {"op_id":"3","op":"PUT","object_type":"t","object_id":"1","data":"{\"v\":3}","checksum":3,"subkey":"x"}]}}"#,
            r#"{"data":{"bucket":"b","data":[
                {"op_id":"4","op":"REMOVE","object_type":"t","object_id":"2","checksum":4,"subkey":"x"},
                {"op_id":"5","op":"MOVE","checksum":20},
                {"op_id":"6","op":"PUT","object_type":"t","object_id":"1","data":"{\"v\":9}","checksum":30,"subkey":"y"}]}}"#,
        ];
        for text in lines {
            assert!(replica.apply(line(text)).unwrap().is_none());
        }
        let snapshot = replica
            .apply(line(r#"{"checkpoint_complete":{"last_op_id":"6"}}"#))
            .unwrap()
            .unwrap();
        let bucket = &snapshot.buckets["b"];
        // 1+2+3+4+20+30: superseded and removed rows still count.
        assert_eq!(
            (bucket.sum, bucket.checksum, bucket.ops),
            (Checksum(60), Checksum(60), 6)
        );
        let data: Vec<_> = bucket
            .rows
            .iter()
            .map(|row| row.data.as_deref().unwrap())
            .collect();
        // Row t/1 twice, under two subkeys: two source rows on one output row.
        assert_eq!(data, [r#"{"v":3}"#, r#"{"v":9}"#]);
        assert!(snapshot.buckets["gone"].rows.is_empty());

        replica
            .apply(line(
                r#"{"checkpoint_diff":{"last_op_id":"8","updated_buckets":[{"bucket":"b","checksum":7,"count":2}],"removed_buckets":["gone"]}}"#,
            ))
            .unwrap();
        replica
            .apply(line(
                r#"{"data":{"bucket":"b","data":[
                    {"op_id":"7","op":"CLEAR","checksum":5},
                    {"op_id":"8","op":"PUT","object_type":"t","object_id":"3","data":"{}","checksum":2,"subkey":"x"}]}}"#,
            ))
            .unwrap();
        let snapshot = replica
            .apply(line(r#"{"checkpoint_complete":{"last_op_id":"8"}}"#))
            .unwrap()
            .unwrap();
        assert_eq!(snapshot.last_op_id, "8");
        assert_eq!(snapshot.buckets.keys().collect::<Vec<_>>(), ["b"]);
        // The sum restarts at the CLEAR's checksum, and CLEAR empties the bucket.
        assert_eq!(snapshot.buckets["b"].sum, Checksum(7));
        assert_eq!(snapshot.buckets["b"].rows.len(), 1);
    }

    #[test]
    fn a_stream_out_of_order_or_with_an_expired_token_is_an_error() {
        let mut replica = Replica::default();
        assert!(replica
            .apply(line(r#"{"checkpoint_complete":{"last_op_id":"1"}}"#))
            .is_err());
        assert!(replica
            .apply(line(r#"{"token_expires_in":0}"#))
            .unwrap_err()
            .contains("expired"));
        assert!(replica
            .apply(line(r#"{"token_expires_in":60}"#))
            .unwrap()
            .is_none());
    }
}
