# Prometheus on 127.0.0.1: scrapes the probes (blackbox-exporter.nix) and PowerSync's metrics, and
# evaluates the alert rules the PowerSync module adds.
#
# Upstream options used: services.prometheus.{enable,listenAddress}
# (nixos/modules/services/monitoring/prometheus/default.nix).
{
  services.prometheus = {
    enable = true;
    listenAddress = "127.0.0.1";
  };
}
