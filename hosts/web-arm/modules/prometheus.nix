# Prometheus on 127.0.0.1: scrapes the probes (blackbox-exporter.nix), the node exporter (whose textfile
# collector publishes the PowerSync slot watchdog's metrics) and PowerSync's own metrics; the PowerSync module
# adds its scrape job and alert rules because Prometheus is enabled here.
#
# Upstream options used: services.prometheus.{enable,listenAddress,scrapeConfigs}
# (nixos/modules/services/monitoring/prometheus/default.nix); services.prometheus.exporters.node.
# {enable,listenAddress,extraFlags} (…/prometheus/exporters.nix, exporters/node.nix; the textfile collector
# is on by default and only needs its directory).
{config, ...}: let
  node = config.services.prometheus.exporters.node;
in {
  services.prometheus = {
    enable = true;
    listenAddress = "127.0.0.1";
    exporters.node = {
      enable = true;
      listenAddress = "127.0.0.1";
      extraFlags = ["--collector.textfile.directory=${dirOf config.services.powersync.operations.watchdog.textfile}"];
    };
    scrapeConfigs = [
      {
        job_name = "node";
        static_configs = [{targets = ["127.0.0.1:${toString node.port}"];}];
      }
    ];
  };
}
