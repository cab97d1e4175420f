//! The durable spool of finished recordings.
