package engine

import (
	"net/http"
)

// corsHeaders lets a browser page of an allowed origin read the answer.
func (s *Server) corsHeaders(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" || s.opts.CORS.Allowed == nil || !s.opts.CORS.Allowed(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if s.opts.CORS.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers a browser's OPTIONS check before a cross-origin poll
// (the cors package's answer, which Node's engine uses).
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	s.corsHeaders(h, r)
	if h.Get("Access-Control-Allow-Origin") != "" {
		h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			h.Set("Access-Control-Allow-Headers", req)
			h.Add("Vary", "Access-Control-Request-Headers")
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}
