//! The threads model (being built).

use std::sync::Arc;

use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "threads";

/// Run the plan to completion (or shutdown), handing results to `sink`.
pub fn run(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
) -> Result<RunReport, SetupError> {
    let _ = (plan, shutdown, sink);
    Err(SetupError {
        message: format!("the {MODEL} model is not built yet"),
    })
}
