//! The outbound balancers' settings: `MESH_PROXY_BALANCER` and failure accrual.

use super::{ConfigError, Reader};
use crate::balance::{AccrualSettings, Algorithm, BalanceSettings, DiscoveryWait};

impl Reader<'_> {
    pub(super) fn balance(&mut self) -> BalanceSettings {
        const NAME: &str = "MESH_PROXY_BALANCER";
        let algorithm = match self.env.var(NAME) {
            None => Algorithm::default(),
            Some(v) => Algorithm::parse(v.trim()).unwrap_or_else(|| {
                self.errors.push(ConfigError::OneOf {
                    name: NAME,
                    value: v,
                    expected: Algorithm::NAMES,
                });
                Algorithm::default()
            }),
        };
        let defaults = AccrualSettings::default();
        let accrual = AccrualSettings {
            max_failures: self.number(
                "MESH_PROXY_FAILURE_ACCRUAL_CONSECUTIVE",
                defaults.max_failures,
                0,
                1_000,
            ),
            min_penalty: self.duration(
                "MESH_PROXY_FAILURE_ACCRUAL_MIN_PENALTY",
                defaults.min_penalty,
            ),
            max_penalty: self.duration(
                "MESH_PROXY_FAILURE_ACCRUAL_MAX_PENALTY",
                defaults.max_penalty,
            ),
        };
        let accrual = AccrualSettings {
            max_penalty: accrual.max_penalty.max(accrual.min_penalty),
            ..accrual
        };
        BalanceSettings {
            algorithm,
            accrual,
            discovery_wait: DiscoveryWait(
                self.duration("MESH_PROXY_DISCOVERY_WAIT", DiscoveryWait::default().0),
            ),
        }
    }
}
