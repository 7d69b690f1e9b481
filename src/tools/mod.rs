//! Live connections to labeling tools' servers: what `push` and `pull` talk to. Files for the
//! tools (`export`) are written by `output::export`, and the tools' exports are read back by
//! `data::label_formats`; this module only moves them over the network.

pub mod label_studio;
