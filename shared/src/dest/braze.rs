//! braze
