package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// advertisedFile keeps the API URL this server tells remote users, written
// at every start so `monokube kubeconfig admin` can print it without
// re-detecting addresses (which may differ in another network namespace).
const advertisedFile = "advertised-url"

func writeAdvertisedURL(dataDir, advertise string, port int) error {
	url := "https://" + net.JoinHostPort(advertise, strconv.Itoa(port)) + "\n"
	if err := os.WriteFile(filepath.Join(dataDir, advertisedFile), []byte(url), 0o644); err != nil {
		return fmt.Errorf("record advertised URL: %w", err)
	}
	return nil
}

// AdvertisedURL is the API URL the server in dataDir last advertised.
func AdvertisedURL(dataDir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, advertisedFile))
	if err != nil {
		return "", fmt.Errorf("read advertised API URL (has the server started?): %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}
