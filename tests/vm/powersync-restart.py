# powersync-restart: a secret rotation restarts the container, which resumes on its slot.
# Globals from the Nix side: rotated_password.
# No `cmd | grep -q`: the driver runs commands under pipefail, and grep -q quitting early can fail the
# writer with SIGPIPE; grep reading to the end (output to /dev/null) cannot.
start_all()

SLOTS = (
    "sudo -u postgres psql -tAc \"SELECT slot_name FROM pg_replication_slots "
    "WHERE slot_name LIKE 'powersync\\_selfhost\\_%'\""
)
ACTIVE = SLOTS.replace("WHERE", "WHERE active AND")


def invocation():
    return server.succeed("systemctl show -p InvocationID --value podman-powersync.service").strip()


with subtest("the service replicates on one active slot"):
    server.wait_for_unit("podman-powersync.service")
    source.wait_until_succeeds(ACTIVE + " | grep . >/dev/null", timeout=300)
    slot = source.succeed(SLOTS).strip()
    before = invocation()

with subtest("rotating the DSN secret restarts the container"):
    source.succeed(
        f"sudo -u postgres psql -c \"ALTER ROLE powersync_repl PASSWORD '{rotated_password}'\""
    )
    # switch-to-configuration-ng exits 4 if any unit is failed afterwards, even one this test is not about;
    # what matters here is the container's restart, checked below.
    status, output = server.execute(
        "/run/current-system/specialisation/rotated/bin/switch-to-configuration test 2>&1"
    )
    t.assertIn(status, (0, 4), output)
    server.wait_until_succeeds(
        f"test \"$(systemctl show -p InvocationID --value podman-powersync.service)\" != '{before}'",
        timeout=120,
    )
    server.wait_for_unit("podman-powersync.service")
    server.succeed(f"grep -qF '{rotated_password}' /run/secrets/rendered/powersync-source.env")

with subtest("it resumes on the same slot, and no second slot appears"):
    source.wait_until_succeeds(ACTIVE + f" | grep -x '{slot}' >/dev/null", timeout=300)
    t.assertEqual(source.succeed(SLOTS).strip(), slot)
