# lib.gateway4 / lib.gateway6: the addresses networking.v6egress exposes for other modules.
{lib}: {
  testGateway4OfASlash24 = {
    expr = lib.gateway4 "10.89.64.0/24";
    expected = "10.89.64.1";
  };
  testGateway4OfASlash28 = {
    expr = lib.gateway4 "192.168.7.16/28";
    expected = "192.168.7.17";
  };
  testGateway4RefusesAHostAddress = {
    expr = lib.gateway4 "10.89.64.1/24";
    expectThrow = true;
  };
  testGateway4RefusesAnOctetAbove255 = {
    expr = lib.gateway4 "10.89.256.0/24";
    expectThrow = true;
  };
  testGateway4RefusesAMissingPrefix = {
    expr = lib.gateway4 "10.89.64.0";
    expectThrow = true;
  };
  testGateway6OfAUla = {
    expr = lib.gateway6 "fd70:7377:6e63:1::/64";
    expected = "fd70:7377:6e63:1::1";
  };
  testGateway6RefusesAGlobalPrefix = {
    expr = lib.gateway6 "2001:db8:1::/64";
    expectThrow = true;
  };
  testGateway6RefusesANonZeroHostPart = {
    expr = lib.gateway6 "fd70:7377:6e63:1::5/64";
    expectThrow = true;
  };
  testGateway6RefusesATooLongPrefix = {
    expr = lib.gateway6 "fd70:7377:6e63:1::/127";
    expectThrow = true;
  };
}
