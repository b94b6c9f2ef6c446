# lib.toYAML and the `!env` references: the text the PowerSync Service parses.
{lib}: {
  testYamlScalarsAtTopLevel = {
    expr = lib.toYAML {
      port = 8080;
      ratio = 0.5;
      on = true;
      off = false;
      nothing = null;
    };
    # Keys sorted; `on`/`off` are quoted because YAML 1.1 readers take them for booleans.
    expected = "nothing: null\n\"off\": false\n\"on\": true\nport: 8080\nratio: 0.5\n";
  };
  testYamlStringsThatLookLikeOtherTypesStayStrings = {
    expr = lib.toYAML {
      a = "no";
      b = "1.10";
      c = "";
      d = "null";
    };
    expected = "a: \"no\"\nb: \"1.10\"\nc: \"\"\nd: \"null\"\n";
  };
  testYamlStringsWithSpecialCharactersAreEscaped = {
    expr = lib.toYAML {s = "a: b # c\n\"quoted\"\ttab \\ back";};
    expected = "s: \"a: b # c\\n\\\"quoted\\\"\\ttab \\\\ back\"\n";
  };
  testYamlKeysThatNeedQuoting = {
    expr = lib.toYAML {
      "with space" = 1;
      "a.b" = 2;
      "9lives" = 3;
      snake_case-key = 4;
    };
    expected = "\"9lives\": 3\n\"a.b\": 2\nsnake_case-key: 4\n\"with space\": 1\n";
  };
  testYamlNestedMapsIndentByTwo = {
    expr = lib.toYAML {outer.inner.leaf = "x";};
    expected = "outer:\n  inner:\n    leaf: \"x\"\n";
  };
  testYamlListOfMapsPutsTheFirstKeyAfterTheDash = {
    expr = lib.toYAML {
      connections = [
        {
          type = "postgresql";
          port = 5432;
        }
        {type = "mongodb";}
      ];
    };
    expected = "connections:\n  - port: 5432\n    type: \"postgresql\"\n  - type: \"mongodb\"\n";
  };
  testYamlNestedListsUseCompactDashes = {
    expr = lib.toYAML {
      m = [
        [1 2]
        [[3] 4]
        5
      ];
    };
    expected = "m:\n  - - 1\n    - 2\n  - - - 3\n    - 4\n  - 5\n";
  };
  testYamlEmptyCollectionsAreFlow = {
    expr = lib.toYAML {
      a = {};
      b = [];
      c = [{} []];
    };
    expected = "a: {}\nb: []\nc:\n  - {}\n  - []\n";
  };
  testYamlEnvBecomesTheCustomTag = {
    expr = lib.toYAML {
      uri = lib.env "PS_SOURCE_DSN";
      pool = lib.envNumber "PS_POOL";
      flag = lib.envBoolean "PS_FLAG";
      list = [(lib.env "PS_A")];
    };
    expected = "flag: !env PS_FLAG::boolean\nlist:\n  - !env PS_A\npool: !env PS_POOL::number\nuri: !env PS_SOURCE_DSN\n";
  };
  testYamlAnAttrsetWithMoreThanEnvIsAMap = {
    expr = lib.toYAML {
      x = {
        _env = "PS_X";
        other = 1;
      };
    };
    expected = "x:\n  _env: \"PS_X\"\n  other: 1\n";
  };
  testYamlEmptyDocument = {
    expr = lib.toYAML {};
    expected = "{}\n";
  };
  testYamlFunctionsAreRefused = {
    expr = lib.toYAML {f = x: x;};
    expectThrow = true;
  };
}
