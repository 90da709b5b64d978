//! A small application to mesh: a web front end that calls two back ends, one over HTTP/1
//! (`books`) and one over gRPC (`authors`), and a load generator that keeps traffic flowing so
//! `mesh stat` has something to show. Each back end can be told to be slow or to fail a fraction
//! of its requests.
//!
//! Every role binds the listener it is given, so tests run the real servers on 127.0.0.1:0.

pub mod authors;
pub mod books;
pub mod faults;
pub mod load;
pub mod serve;
pub mod web;
