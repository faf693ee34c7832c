package registries

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Front is the node-local registry front containerd sends the pulls of the
// configured registries to (hosts.toml names it, containerd adds the
// registry as ?ns=). It answers each request from the first source that
// has the object: a peer's mirror, a mirror endpoint (the repository name
// rewritten), the registry itself. It listens on loopback, and answers
// only requests that carry its token: the hosts.toml files that name it
// (root's alone) give it to containerd, so no other local user or
// host-network pod can pull with the cluster's credentials through it.
type Front struct {
	token     string
	settings  atomic.Pointer[Settings]
	upstreams upstreams
	// peers finds a peer holding an object; nil without the embedded mirror.
	peers    *Peers
	listener net.Listener
	server   *http.Server
}

// newFront listens on a free loopback port.
func newFront(peers *Peers) (*Front, error) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("registry front: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		listener.Close()
		return nil, err
	}
	f := &Front{peers: peers, listener: listener, token: hex.EncodeToString(raw)}
	f.update(Settings{})
	f.server = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	return f, nil
}

// URL is what hosts.toml names.
func (f *Front) URL() string { return "http://" + f.listener.Addr().String() }

func (f *Front) serve() error {
	if err := f.server.Serve(f.listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (f *Front) close() error { return f.server.Close() }

// update makes s the settings of every request from now on.
func (f *Front) update(s Settings) {
	f.settings.Store(&s)
	f.upstreams.reset(s)
}

// object is one request of the distribution API: a manifest or blob of a
// repository, named by tag or digest.
type object struct {
	repository string
	kind       string // "manifests" or "blobs"
	reference  string
}

// parseObject reads /v2/<repository>/<kind>/<reference>.
func parseObject(path string) (object, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return object{}, false
	}
	for _, kind := range []string{"manifests", "blobs"} {
		if i := strings.LastIndex(rest, "/"+kind+"/"); i > 0 {
			o := object{repository: rest[:i], kind: kind, reference: rest[i+len(kind)+2:]}
			return o, o.reference != "" && !strings.Contains(o.reference, "/")
		}
	}
	return object{}, false
}

// readRequest reads a pull request of the registry API, with the registry
// containerd names in ?ns=; it answers the version check and what is not a
// pull itself, returning ok false.
func readRequest(w http.ResponseWriter, r *http.Request) (o object, registry string, ok bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return object{}, "", false
	}
	if r.URL.Path == "/v2/" || r.URL.Path == "/v2" {
		w.WriteHeader(http.StatusOK)
		return object{}, "", false
	}
	o, ok = parseObject(r.URL.Path)
	registry = r.URL.Query().Get("ns")
	if !ok || registry == "" {
		http.Error(w, "not a registry request", http.StatusBadRequest)
		return object{}, "", false
	}
	return o, registry, true
}

func (o object) path(repository string) string {
	return "/v2/" + repository + "/" + o.kind + "/" + o.reference
}

// source is one place an object may come from.
type source struct {
	endpoint  *url.URL
	configKey string
	rewrite   map[string]string
}

// tokenHeader carries the front's token; containerd sends it from hosts.toml.
const tokenHeader = "X-Monokube-Front-Token"

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(tokenHeader)), []byte(f.token)) != 1 {
		http.Error(w, "only this node's containerd may pull through its registry front", http.StatusUnauthorized)
		return
	}
	o, registry, ok := readRequest(w, r)
	if !ok {
		return
	}
	settings := f.settings.Load()
	if f.peers != nil && settings.peersServe(registry) {
		if resp := f.peers.find(r.Context(), r, registry); resp != nil {
			relay(w, resp)
			return
		}
	}
	var failed *http.Response
	var failures []string
	for _, src := range sources(settings, registry) {
		resp, err := f.fetch(r, src, o)
		if err != nil {
			failures = append(failures, err.Error())
			continue
		}
		if resp.StatusCode < 300 {
			if failed != nil {
				failed.Body.Close()
			}
			relay(w, resp)
			return
		}
		if resp.StatusCode != http.StatusNotFound && failed == nil {
			// The first refusal is what the puller should see (a 401
			// tells the operator the credentials are missing).
			failed = resp
			failures = append(failures, fmt.Sprintf("%s: %s", src.endpoint.Host, resp.Status))
			continue
		}
		resp.Body.Close()
	}
	if failed != nil {
		klog.V(2).InfoS("Registry pull refused", "registry", registry, "repository", o.repository, "tried", failures)
		relay(w, failed)
		return
	}
	if len(failures) > 0 {
		klog.InfoS("No registry source answered", "registry", registry, "repository", o.repository, "errors", failures)
		http.Error(w, strings.Join(failures, "; "), http.StatusBadGateway)
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}

// sources are a registry's mirror endpoints in order, then the registry
// itself (k3s's order; the rewrites apply to the mirrors only).
func sources(s *Settings, registry string) []source {
	var list []source
	mirror, _ := s.mirrorFor(registry)
	for _, endpoint := range mirror.Endpoint {
		u, err := url.Parse(endpoint)
		if err != nil {
			continue // refused when the settings were loaded
		}
		list = append(list, source{endpoint: u, configKey: u.Host, rewrite: mirror.Rewrite})
	}
	upstream, _ := url.Parse(upstreamURL(registry))
	if !slices.ContainsFunc(list, func(s source) bool { return s.endpoint.Host == upstream.Host }) {
		list = append(list, source{endpoint: upstream, configKey: registry})
	}
	return list
}

// rewritten applies the first rewrite (in pattern order) that matches.
func rewritten(repository string, rewrite map[string]string) string {
	for _, pattern := range slices.Sorted(maps.Keys(rewrite)) {
		re, err := regexp.Compile(pattern)
		if err == nil && re.MatchString(repository) {
			return re.ReplaceAllString(repository, rewrite[pattern])
		}
	}
	return repository
}

func (f *Front) fetch(r *http.Request, src source, o object) (*http.Response, error) {
	repository := rewritten(o.repository, src.rewrite)
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	t, err := f.upstreams.transport(ctx, src.endpoint, src.configKey, repository)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.endpoint.Host, err)
	}
	target := *src.endpoint
	target.Path = o.path(repository)
	target.RawQuery = ""
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, header := range []string{"Accept", "Range"} {
		if v := r.Header.Values(header); len(v) > 0 {
			req.Header[header] = v
		}
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.endpoint.Host, err)
	}
	return resp, nil
}

// relayedHeaders are what a puller needs of a registry's answer.
var relayedHeaders = []string{"Content-Type", "Content-Length", "Docker-Content-Digest", "Content-Range", "Accept-Ranges", "Etag"}

// relay sends resp to the puller and closes it.
func relay(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for _, header := range relayedHeaders {
		if v := resp.Header.Values(header); len(v) > 0 {
			w.Header()[header] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
