# The blackbox exporter and the HTTP probes of web-arm's public endpoints. Every entry shares one job, so
# each is probed at the same interval with the same module.
#
# Upstream options used: services.prometheus.exporters.blackbox.{enable,listenAddress,configFile}
# (nixos/modules/services/monitoring/prometheus/exporters/blackbox.nix, exporters.nix: listenAddress
# defaults to 0.0.0.0); services.prometheus.scrapeConfigs (…/prometheus/default.nix).
{
  config,
  pkgs,
  ...
}: let
  exporter = config.services.prometheus.exporters.blackbox;
  probes = [
    # The operator's existing probe entries stay in this list, unchanged.
    # PowerSync: liveness through nginx and TLS, i.e. what a client reaches.
    "https://powersync.reptide.eu/probes/liveness"
  ];
in {
  services.prometheus.exporters.blackbox = {
    enable = true;
    listenAddress = "127.0.0.1";
    # JSON is YAML; the exporter checks this file at build time (enableConfigCheck).
    configFile = pkgs.writeText "blackbox.yml" (builtins.toJSON {
      modules.http_2xx = {
        prober = "http";
        timeout = "10s";
        http.valid_status_codes = [200];
      };
    });
  };

  services.prometheus.scrapeConfigs = [
    {
      job_name = "blackbox-http";
      metrics_path = "/probe";
      params.module = ["http_2xx"];
      scrape_interval = "60s";
      static_configs = [{targets = probes;}];
      relabel_configs = [
        {
          source_labels = ["__address__"];
          target_label = "__param_target";
        }
        {
          source_labels = ["__param_target"];
          target_label = "instance";
        }
        {
          target_label = "__address__";
          replacement = "127.0.0.1:${toString exporter.port}";
        }
      ];
    }
  ];
}
