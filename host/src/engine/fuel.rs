//! Which jobs count fuel. Fuel-metered code checks a counter on every function call and loop
//! back-edge, which costs call-heavy code a third or more of its speed, so by default only the
//! jobs that set a fuel budget run metered code: a task's metered variant is compiled the
//! first time one of its jobs asks for it, and every other job runs code that counts nothing.

use serde::{Deserialize, Serialize};

/// When the host meters fuel (`--fuel-metering`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FuelMetering {
    /// Every job runs metered code and reports the fuel it consumed: one compile per task.
    #[value(alias = "true", alias = "on", alias = "yes", alias = "1")]
    Always,
    /// Jobs that set a fuel budget (or run under a ceiling, `--max-fuel`) run metered code,
    /// compiled when the first of them arrives; every other job runs unmetered code.
    #[default]
    OnDemand,
    /// No job counts fuel, and none may set a budget.
    #[value(alias = "false", alias = "off", alias = "no", alias = "0")]
    Never,
}

/// Whether compiled code counts fuel: the two kinds of code the host may run, each in an
/// engine of its own (wasmtime meters fuel per engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metering {
    /// The code counts nothing.
    Unmetered,
    /// The code counts fuel.
    Metered,
}

impl FuelMetering {
    /// The code a job runs, given the fuel budget it has.
    pub fn for_budget(self, fuel: Option<u64>) -> Metering {
        match (self, fuel) {
            (Self::Always, _) | (Self::OnDemand, Some(_)) => Metering::Metered,
            (Self::OnDemand, None) | (Self::Never, _) => Metering::Unmetered,
        }
    }

    /// The code every task is compiled to when it loads: what a job without a budget runs.
    pub fn default_code(self) -> Metering {
        self.for_budget(None)
    }

    /// Whether jobs may set a fuel budget.
    pub fn allows_budgets(self) -> bool {
        self != Self::Never
    }

    /// The code other than the default one that some jobs run, compiled on demand.
    pub fn on_demand_code(self) -> Option<Metering> {
        (self == Self::OnDemand).then_some(Metering::Metered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_demand_meters_exactly_the_jobs_with_a_budget() {
        use Metering::*;
        let cases = [
            (FuelMetering::Always, None, Metered),
            (FuelMetering::Always, Some(5), Metered),
            (FuelMetering::OnDemand, None, Unmetered),
            (FuelMetering::OnDemand, Some(5), Metered),
            (FuelMetering::Never, None, Unmetered),
        ];
        for (mode, fuel, code) in cases {
            assert_eq!(mode.for_budget(fuel), code, "{mode:?} {fuel:?}");
        }
        assert_eq!(FuelMetering::OnDemand.on_demand_code(), Some(Metered));
        assert_eq!(FuelMetering::Always.on_demand_code(), None);
        assert!(!FuelMetering::Never.allows_budgets());
    }

    #[test]
    fn the_old_boolean_values_still_parse() {
        use clap::ValueEnum;
        for (text, mode) in [
            ("true", FuelMetering::Always),
            ("false", FuelMetering::Never),
            ("on-demand", FuelMetering::OnDemand),
        ] {
            assert_eq!(FuelMetering::from_str(text, true), Ok(mode));
        }
    }
}
