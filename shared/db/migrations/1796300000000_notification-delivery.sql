-- Up Migration
-- Notification delivery (d-notify): the delivery record that makes one event reach one
-- notification at most once, and Quay's in-app `notification` rows (method quay_notification).

-- One row per (notification, event occurrence). The worker inserts it as 'sending' and commits
-- before it contacts the target, then marks it 'delivered' or 'failed'. A run that finds the row
-- 'delivered' or still 'sending' (its predecessor died during the request: the target may have
-- received it) does not send again; only 'failed' is retried. No foreign key: the uuid names a
-- repository or a namespace notification, and the record outlives a deleted notification's jobs.
CREATE TABLE notificationdelivery (
  notification_uuid uuid NOT NULL,
  event_id uuid NOT NULL,
  state text NOT NULL CHECK (state IN ('sending', 'delivered', 'failed', 'in_doubt')),
  attempts integer NOT NULL DEFAULT 1,
  last_error text,
  created timestamptz NOT NULL DEFAULT now(),
  updated timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (notification_uuid, event_id)
);
CREATE INDEX notificationdelivery_updated ON notificationdelivery(updated);

-- Quay's in-app notifications (data/model/notification.py): kind is the event name, target the
-- user or organization that sees it, metadata_json the event_data.
CREATE TABLE notification (
  id bigserial PRIMARY KEY,
  uuid uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  kind text NOT NULL,
  target_id bigint NOT NULL REFERENCES namespace(id) ON DELETE CASCADE,
  metadata_json jsonb NOT NULL DEFAULT '{}',
  created timestamptz NOT NULL DEFAULT now(),
  dismissed boolean NOT NULL DEFAULT false,
  lookup_path text
);
CREATE INDEX notification_target ON notification(target_id, created);
