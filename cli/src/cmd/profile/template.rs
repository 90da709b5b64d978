//! The commented ServiceProfile `mesh profile --template` writes: valid as it stands, and every
//! field a user may want explained where it sits.

use super::{Profile, Target};

/// The template; `SERVICE`, `NAMESPACE` and `FQDN` in braces are replaced. Every value it
/// uncomments must still pass the CRD's schema (the tests check the uncommented part).
const TEMPLATE: &str = r#"# ServiceProfile for {SERVICE}.{NAMESPACE}: edit, then `kubectl apply -f` it.
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  # Proxies look a profile up by the service's fully qualified name.
  name: {FQDN}
  namespace: {NAMESPACE}
spec:
  # Routes group requests, so metrics are reported per route and retries and
  # timeouts can be set per route. A request belongs to the first route whose
  # condition it matches.
  routes:
  - name: '/authors/{id}'
    condition:
      # A regular expression the whole request path must match.
      pathRegex: '/authors/\d+'
      # The request's method. When a condition has several fields, all of them
      # must match.
      method: GET
      # Conditions combine with all, any and not, e.g.:
      # any:
      # - all:
      #   - method: POST
      #   - pathRegex: '/authors/\d+'
      # - not:
      #     method: DELETE
    # Response classes say which responses count as failures. The first class
    # whose condition matches decides.
    responseClasses:
    - condition:
        # An inclusive range of status codes; give min alone (or max alone)
        # for one bound only.
        status:
          min: 500
          max: 599
        # Conditions combine with all, any and not here too.
      isFailure: true
    # Requests on this route are safe to retry: failed ones are retried, as the
    # retry budget below allows.
    # isRetryable: true
    # How long a request on this route may take, retries included, before the
    # proxy gives up on it with a 504.
    # timeout: 300ms
  # The retry budget caps retries: at most retryRatio extra requests per
  # request, over a ttl window, and at least minRetriesPerSecond.
  # retryBudget:
  #   retryRatio: 0.2
  #   minRetriesPerSecond: 10
  #   ttl: 10s
"#;

pub(super) fn render(target: &Target) -> Profile {
    Profile::Text(
        TEMPLATE
            .replace("{SERVICE}", &target.service)
            .replace("{NAMESPACE}", &target.namespace)
            .replace("{FQDN}", &target.fqdn()),
    )
}
