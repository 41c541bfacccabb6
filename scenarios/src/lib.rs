//! The scenario format (parsing, validation, generation for property tests) and the built-in library.
//!
//! Built in issue #5; until then the crate holds only this map.
