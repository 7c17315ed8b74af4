package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/irsa-broker/irsa-broker/internal/atomicfile"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/sidecar/brokerclient"
)

// Environment variables irsactl reads (docs/irsactl.md).
const (
	envConfig     = "IRSACTL_CONFIG"
	envBroker     = "IRSA_BROKER"
	envEndpoint   = "DOMINO_IRSA_ENDPOINT" // what the sidecar uses, set in workload pods
	envCA         = "IRSA_CA_FILE"
	envWorkloadCA = "DOMINO_IRSA_SSL_CERT" // the broker's CA, mounted in workload pods
	envToken      = "IRSA_TOKEN"
	envTokenFile  = "IRSA_TOKEN_FILE"
	envAPIKey     = "IRSA_API_KEY"
	envOutput     = "IRSACTL_OUTPUT"
	envDominoAPI  = "DOMINO_API_PROXY" // http://localhost:8899 in Domino workspaces
	defaultBroker = "http://127.0.0.1:6000"
)

// fileConfig is the config file (YAML): what `irsactl config set` writes.
type fileConfig struct {
	Broker    string `json:"broker,omitempty"`
	CAFile    string `json:"ca_file,omitempty"`
	TokenFile string `json:"token_file,omitempty"`
	Output    string `json:"output,omitempty"`
}

var configKeys = []string{"broker", "ca_file", "token_file", "output"}

// settings are the global flags and what they resolve to.
type settings struct {
	e env
	// flags
	configPath, broker, caFile, tokenFile, output, token string
}

// setting is one resolved value and where it came from.
type setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func (s *settings) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&s.configPath, "config", "", "config file (default $"+envConfig+", else $XDG_CONFIG_HOME/irsactl/config.yaml)")
	f.StringVar(&s.broker, "broker", "", "broker URL (default $"+envBroker+", $"+envEndpoint+", the config file, "+defaultBroker+")")
	f.StringVar(&s.caFile, "ca-file", "", "PEM file of CAs to trust for the broker's certificate ($"+envCA+", $"+envWorkloadCA+")")
	f.StringVar(&s.tokenFile, "token-file", "", "file holding the bearer token ($"+envTokenFile+")")
	f.StringVarP(&s.output, "output", "o", "", "output format: table, json or yaml ($"+envOutput+")")
	// A token on the command line is visible to every user of the machine;
	// kept, hidden, for the legacy `irsactl map -token`.
	f.StringVar(&s.token, "token", "", "bearer token (prefer $"+envToken+")")
	_ = f.MarkHidden("token")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputs, cobra.ShellCompDirectiveNoFileComp))
}

// path is the config file in effect and whether the user chose it.
func (s *settings) path() (string, string) {
	if s.configPath != "" {
		return s.configPath, "--config"
	}
	if p := s.e.getenv(envConfig); p != "" {
		return p, envConfig
	}
	dir := s.e.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := s.e.getenv("HOME")
		if home == "" {
			return "", ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "irsactl", "config.yaml"), "default"
}

// readFile reads the config file. A missing file is an empty config when it
// is the default one, or when missingOK (config set creates it).
func (s *settings) readFile(missingOK bool) (fileConfig, string, error) {
	p, src := s.path()
	if p == "" {
		return fileConfig{}, "", nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) && (src == "default" || missingOK) {
		return fileConfig{}, p, nil
	}
	if err != nil {
		return fileConfig{}, p, fmt.Errorf("config file: %w", err)
	}
	var fc fileConfig
	if err := yaml.UnmarshalStrict(b, &fc); err != nil {
		return fileConfig{}, p, fmt.Errorf("config file %s: %w", p, err)
	}
	return fc, p, nil
}

// resolve returns every setting with its source, flags first, then the
// environment, then the config file, then defaults. The token's value is
// never part of it.
func (s *settings) resolve() ([]setting, fileConfig, error) {
	fc, p, err := s.readFile(false)
	if err != nil {
		return nil, fc, err
	}
	pick := func(key, flag, flagName string, envs []string, file, def string) setting {
		if flag != "" {
			return setting{key, flag, "flag --" + flagName}
		}
		for _, e := range envs {
			if v := s.e.getenv(e); v != "" {
				return setting{key, v, "env " + e}
			}
		}
		if file != "" {
			return setting{key, file, "config " + p}
		}
		if def != "" {
			return setting{key, def, "default"}
		}
		return setting{key, "", "unset"}
	}
	out := []setting{
		pick("broker", s.broker, "broker", []string{envBroker, envEndpoint}, fc.Broker, defaultBroker),
		pick("ca_file", s.caFile, "ca-file", []string{envCA, envWorkloadCA}, fc.CAFile, ""),
		pick("token_file", s.tokenFile, "token-file", []string{envTokenFile}, fc.TokenFile, ""),
		pick("output", s.output, "output", []string{envOutput}, fc.Output, outTable),
	}
	// DOMINO_IRSA_ENDPOINT is the map URL in workload pods; the API's paths
	// go under the base URL.
	out[0].Value = brokerapi.BaseURL(out[0].Value)
	if !slices.Contains(outputs, out[3].Value) {
		return nil, fc, usagef("output %q (%s): want one of %s", out[3].Value, out[3].Source, strings.Join(outputs, ", "))
	}
	cfgSrc := "config file " + orDash(p)
	if p != "" {
		if _, err := os.Stat(p); err != nil {
			cfgSrc += " (absent)"
		}
	}
	out = append(out, setting{"config", orDash(p), cfgSrc})
	out = append(out, setting{"credential", s.credentialSource(out[2].Value), ""})
	return out, fc, nil
}

func get(ss []setting, key string) string {
	for _, s := range ss {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// credentialSource says, without reading any secret, which credential a
// request would carry.
func (s *settings) credentialSource(tokenFile string) string {
	switch {
	case s.token != "":
		return "bearer token from flag --token"
	case s.e.getenv(envToken) != "":
		return "bearer token from env " + envToken
	case tokenFile != "":
		return "bearer token from file " + tokenFile
	case s.e.getenv(envAPIKey) != "":
		return "Domino API key from env " + envAPIKey
	case s.e.getenv(envDominoAPI) != "":
		return "bearer token from " + strings.TrimRight(s.e.getenv(envDominoAPI), "/") + "/access-token"
	}
	return "none"
}

// format is the output format in effect.
func (s *settings) format() (string, error) {
	ss, _, err := s.resolve()
	if err != nil {
		return "", err
	}
	return get(ss, "output"), nil
}

// client builds an API client from the settings.
func (s *settings) client(ctx context.Context) (*client, error) {
	ss, _, err := s.resolve()
	if err != nil {
		return nil, err
	}
	hc, err := brokerclient.NewHTTPClient(brokerclient.TLSOptions{CAFile: get(ss, "ca_file"), Timeout: 2 * time.Minute}, nil)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(get(ss, "broker"), "/")
	u, err := url.Parse(base)
	if err != nil {
		return nil, usagef("broker URL %q: %v", base, err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		return nil, usagef("broker URL %q: want http:// or https://", base)
	}
	cred, err := s.credential(ctx, hc, get(ss, "token_file"))
	if err != nil {
		return nil, err
	}
	if err := checkTransport(u, cred); err != nil {
		return nil, err
	}
	return &client{base: base, http: hc, cred: cred}, nil
}

// credential reads the credential: --token, $IRSA_TOKEN, the token file,
// $IRSA_API_KEY, then Domino's API proxy inside a workspace.
func (s *settings) credential(ctx context.Context, hc *http.Client, tokenFile string) (credential, error) {
	bearer := func(v, src string) (credential, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			return credential{}, fmt.Errorf("%s: the token is empty", src)
		}
		return credential{header: brokerapi.HeaderAuthorization, value: v, source: src}, nil
	}
	switch {
	case s.token != "":
		return bearer(s.token, "flag --token")
	case s.e.getenv(envToken) != "":
		return bearer(s.e.getenv(envToken), "env "+envToken)
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return credential{}, fmt.Errorf("token file: %w", err)
		}
		return bearer(string(b), "file "+tokenFile)
	case s.e.getenv(envAPIKey) != "":
		return credential{header: brokerapi.HeaderDominoAPIKey, value: strings.TrimSpace(s.e.getenv(envAPIKey)), source: "env " + envAPIKey}, nil
	case s.e.getenv(envDominoAPI) != "":
		base := s.e.getenv(envDominoAPI)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		tok, err := brokerclient.ProxyToken{BaseURL: base, Client: hc}.Token(ctx)
		if err != nil {
			return credential{}, &transportError{err}
		}
		return bearer(tok, strings.TrimRight(base, "/")+"/access-token")
	}
	return credential{}, nil
}

func newConfigCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the settings in effect and where each comes from",
		Long: `Show the broker URL, CA file, token file, output format and credential in effect,
and where each comes from: a flag, the environment, the config file or the default.
The token itself is never printed.

Precedence: flags, then environment variables (IRSA_BROKER or DOMINO_IRSA_ENDPOINT,
IRSA_CA_FILE or DOMINO_IRSA_SSL_CERT, IRSA_TOKEN, IRSA_TOKEN_FILE, IRSA_API_KEY, IRSACTL_OUTPUT), then the
config file, then defaults. Inside a Domino workspace (DOMINO_API_PROXY set) the
token comes from the API proxy's /access-token when nothing else gives one.`,
		Example: `  irsactl config
  irsactl config set broker https://irsa-svc.domino-field
  irsactl config set ca_file /etc/irsa/ca.crt
  IRSA_TOKEN=$(cat ~/.domino-token) irsactl config -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, _, err := s.resolve()
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), get(ss, "output"), map[string]any{"settings": ss}, func(t *tabwriter.Writer) {
				row(t, "KEY", "VALUE", "SOURCE")
				for _, x := range ss {
					row(t, x.Key, orDash(x.Value), orDash(x.Source))
				}
			})
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Write one setting to the config file (" + strings.Join(configKeys, ", ") + ")",
		Long: `Write one setting to the config file, creating it if needed. An empty VALUE
removes the key. Tokens are not stored: use token_file or the environment.`,
		Example: `  irsactl config set broker https://irsa-svc.domino-field
  irsactl config set output json
  irsactl config set ca_file ""`,
		Args: exactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return configKeys, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			fc, p, err := s.readFile(true)
			if err != nil {
				return err
			}
			if p == "" {
				return usagef("no config file: set --config, $%s or $HOME", envConfig)
			}
			key, val := args[0], args[1]
			switch key {
			case "broker":
				fc.Broker = val
			case "ca_file":
				fc.CAFile = val
			case "token_file":
				fc.TokenFile = val
			case "output":
				if val != "" && !slices.Contains(outputs, val) {
					return usagef("output: want one of %s", strings.Join(outputs, ", "))
				}
				fc.Output = val
			default:
				return usagef("unknown key %q: want one of %s", key, strings.Join(configKeys, ", "))
			}
			b, err := yaml.Marshal(fc)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(cmd.Context(), p, b, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s set\n", p, key)
			return nil
		},
	}
	cmd.AddCommand(set)
	return cmd
}
