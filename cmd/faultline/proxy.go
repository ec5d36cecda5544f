package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/internal/exitcode"
	"github.com/faultline/faultline/targets"
)

func newProxyCmd() *cobra.Command {
	var opts faults.ServerOptions
	cmd := &cobra.Command{
		Use:   "proxy [--listen HOST:PORT]",
		Short: "Run a Toxiproxy server (the Docker runtime runs this in a container)",
		Long: `Run Toxiproxy v2.12.0's server, in process, until SIGTERM/SIGINT. Its HTTP
API is Toxiproxy's own, so any Toxiproxy client can drive it. On exit every
proxy and toxic is removed.

When the environment variable ` + faults.ProxyTokenEnv + ` is set, every API
request must carry its value (Authorization: Bearer TOKEN, or as the password
of HTTP basic auth, e.g. http://faultline:TOKEN@HOST:PORT for Toxiproxy's own
clients); others get 401. The Docker runtime sets it to the run's token. The
token is never a flag, so that ps does not show it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Verbose {
				opts.Log = os.Stderr
			}
			opts.Token = targets.Token(os.Getenv(faults.ProxyTokenEnv))
			auth := "open to anyone who reaches it"
			if opts.Token != "" {
				auth = "requires the token in " + faults.ProxyTokenEnv
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "faultline proxy: Toxiproxy API on %s (%s)\n", opts.Listen, auth)
			if err := faults.ServeProxyWith(cmd.Context(), opts); err != nil {
				return exitcode.New(exitcode.Internal, fmt.Errorf("proxy: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:8474", "address of the Toxiproxy HTTP API")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "log every request, proxy and connection")
	return cmd
}
