-- Feedback from SES, kept next to the log in the same transactions as the events.

-- The latest delivery outcome SES reported for an email. It is separate from `status`, which
-- belongs to sending: an email stays 'sent' while its feedback moves from 'delayed' or
-- 'delivered' to 'bounced' or 'complained'.
--   delayed: SES is still retrying; soft_bounced: a transient bounce;
--   delivered: the receiving server accepted it; bounced: a permanent bounce;
--   rejected: SES refused it (virus); rendering_failed: its template failed to render;
--   complained: the recipient marked it as spam, which nothing later overwrites.
ALTER TABLE emails
    ADD COLUMN feedback_status text CHECK (feedback_status IN (
        'delayed', 'soft_bounced', 'delivered', 'bounced', 'rejected',
        'rendering_failed', 'complained'));

-- Feedback whose SES message id no recorded send carries yet. Each row points at its
-- FeedbackHeld event. Recording the send (EmailSent) links the rows and deletes them, so
-- what stays here is feedback for sends never recorded.
CREATE TABLE held_feedback (
    position       bigint PRIMARY KEY,
    ses_message_id text NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX held_feedback_ses_message_id ON held_feedback (ses_message_id);
