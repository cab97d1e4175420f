//! The recorder: frames in, recordings out.
