//! Where `reader` sends the lines of the sources it reads: the report's
//! `Aggregator` or the `--simulate` replay. Pure.

/// Takes the lines of a run's sources, one source after the other.
pub trait Sink {
    /// A new source starts; line numbers restart at 1.
    fn begin_source(&mut self, name: &str);
    /// One line of the current source (line ending optional).
    fn line(&mut self, text: &[u8]);
    /// The current source stopped early, for this reason.
    fn source_failed(&mut self, error: String);
}

impl Sink for super::report::Aggregator {
    fn begin_source(&mut self, name: &str) {
        super::report::Aggregator::begin_source(self, name);
    }

    fn line(&mut self, text: &[u8]) {
        super::report::Aggregator::line(self, text);
    }

    fn source_failed(&mut self, error: String) {
        super::report::Aggregator::source_failed(self, error);
    }
}
