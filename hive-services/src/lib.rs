//! # hive-services
//!
//! The services around Hive agents: the tracker (in-memory or Redis), the registrar (signed
//! tokens), and the synthetic live origin behind `hive origin` and `hive demo`.
//!
//! | module | what |
//! |---|---|
//! | [`origin`] | a synthetic live HLS/DASH origin in real time, or a folder of real media |

#![forbid(unsafe_code)]

pub mod origin;
