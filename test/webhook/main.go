// Command webhook is a validating admission webhook for tests: it refuses
// any object labelled webhook-test=deny, with a message naming the pod that
// served it, and allows everything else. It serves HTTPS on :8443 with the
// pair in /tls (tls.crt, tls.key), as a Secret mounts it.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
)

// review is the part of an admission.k8s.io/v1 AdmissionReview used here.
type review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *request  `json:"request,omitempty"`
	Response   *response `json:"response,omitempty"`
}

type request struct {
	UID    string `json:"uid"`
	Object struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	} `json:"object"`
}

type response struct {
	UID     string  `json:"uid"`
	Allowed bool    `json:"allowed"`
	Status  *status `json:"status,omitempty"`
}

type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
			http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
			return
		}
		out := review{APIVersion: in.APIVersion, Kind: in.Kind, Response: &response{UID: in.Request.UID, Allowed: true}}
		if in.Request.Object.Metadata.Labels["webhook-test"] == "deny" {
			out.Response.Allowed = false
			out.Response.Status = &status{Code: http.StatusForbidden, Message: fmt.Sprintf("denied by the test webhook in pod %s", host)}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	log.Printf("webhook serving on :8443")
	log.Fatal(http.ListenAndServeTLS(":8443", "/tls/tls.crt", "/tls/tls.key", nil))
}
