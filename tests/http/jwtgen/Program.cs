// `JwtGen verify TOKEN PUBLIC_KEY SUBJECT` prints IdentityModel's verdict on a token made
// elsewhere (vigil generatekey --jwt), with the same validation.
//
// JwtGen: makes MonitorApiKey tokens by dotnet-monitor's documented procedure (api-key-format.md:
// an ECDSA P-384 key, an ES384-signed JWT with aud, exp as a string, iss and sub, and the public
// JSON Web Key serialized by System.Text.Json and base64url-encoded) plus variants, and states
// for each whether IdentityModel, configured as dotnet-monitor configures its JWT bearer
// validation, accepts it. Prints one JSON object per line:
//   {"name", "token", "publicKey", "subject", "dotnet": "accepted" | "refused: reason"}
using System.IdentityModel.Tokens.Jwt;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.IdentityModel.Tokens;

const string Audience = "https://github.com/dotnet/dotnet-monitor";
const string Issuer = "https://github.com/dotnet/dotnet-monitor/generatekey+MonitorApiKey";

var algorithms = new Dictionary<string, string>
{
    ["ES256"] = SecurityAlgorithms.EcdsaSha256,
    ["ES384"] = SecurityAlgorithms.EcdsaSha384,
    ["ES512"] = SecurityAlgorithms.EcdsaSha512,
    ["RS256"] = SecurityAlgorithms.RsaSha256,
    ["RS384"] = SecurityAlgorithms.RsaSha384,
    ["RS512"] = SecurityAlgorithms.RsaSha512,
};

(SecurityKey Signing, SecurityKey Public) NewKey(string alg)
{
    if (alg.StartsWith("ES"))
    {
        ECCurve curve = alg switch
        {
            "ES256" => ECCurve.NamedCurves.nistP256,
            "ES384" => ECCurve.NamedCurves.nistP384,
            _ => ECCurve.NamedCurves.nistP521,
        };
        ECDsa dsa = ECDsa.Create();
        dsa.GenerateKey(curve);
        ECDsa pub = ECDsa.Create(dsa.ExportParameters(includePrivateParameters: false));
        return (new ECDsaSecurityKey(dsa), new ECDsaSecurityKey(pub));
    }
    RSA rsa = RSA.Create(2048);
    RSA rsaPub = RSA.Create(rsa.ExportParameters(includePrivateParameters: false));
    return (new RsaSecurityKey(rsa), new RsaSecurityKey(rsaPub));
}

string PublicKeyText(SecurityKey pub)
{
    JsonWebKey jwk = pub is ECDsaSecurityKey ec
        ? JsonWebKeyConverter.ConvertFromECDsaSecurityKey(ec)
        : JsonWebKeyConverter.ConvertFromRSASecurityKey((RsaSecurityKey)pub);
    string json = JsonSerializer.Serialize(jwk,
        new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });
    return Base64UrlEncoder.Encode(json);
}

long Epoch(DateTime t) => EpochTime.GetIntDate(t);

string Token(SecurityKey? signing, string alg, string subject, long exp,
             string aud = Audience, string iss = Issuer)
{
    JwtHeader header;
    if (signing == null)
    {
        header = new JwtHeader(); // an unsigned token, saying so or not
        if (alg == "none")
        {
            header["alg"] = "none";
            header["typ"] = JwtConstants.HeaderType;
        }
    }
    else
    {
        header = new JwtHeader(new SigningCredentials(signing, algorithms[alg]), null, JwtConstants.HeaderType);
    }
    var payload = new JwtPayload(new[]
    {
        new Claim("aud", aud),
        new Claim("exp", exp.ToString()),
        new Claim("iss", iss),
        new Claim("sub", subject),
    });
    return new JwtSecurityTokenHandler().WriteToken(new JwtSecurityToken(header, payload));
}

// dotnet-monitor's TokenValidationParameters (ConfigureApiKeyTokenValidation) and its
// authorization rule (the sub claim, mapped to NameIdentifier, equals the configured Subject).
string DotnetVerdict(string token, SecurityKey pub, string subject)
{
    var p = new TokenValidationParameters
    {
        RequireSignedTokens = true,
        ValidAlgorithms = new[]
        {
            SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha256Signature,
            SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha384Signature,
            SecurityAlgorithms.EcdsaSha512, SecurityAlgorithms.EcdsaSha512Signature,
            SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha256Signature,
            SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha384Signature,
            SecurityAlgorithms.RsaSha512, SecurityAlgorithms.RsaSha512Signature,
        },
        ValidateIssuer = true,
        ValidIssuer = Issuer,
        ValidateIssuerSigningKey = true,
        IssuerSigningKeys = new[] { pub },
        TryAllIssuerSigningKeys = true,
        ValidateAudience = true,
        ValidAudiences = new[] { Audience },
        ValidateActor = false,
        ValidateLifetime = true,
    };
    try
    {
        ClaimsPrincipal user = new JwtSecurityTokenHandler().ValidateToken(token, p, out _);
        return user.HasClaim(ClaimTypes.NameIdentifier, subject) ? "accepted" : "refused: subject";
    }
    catch (Exception e)
    {
        return "refused: " + e.GetType().Name;
    }
}

if (args.Length == 4 && args[0] == "verify")
{
    JsonWebKey jwk = JsonWebKey.Create(Base64UrlEncoder.Decode(args[2]));
    Console.WriteLine(DotnetVerdict(args[1], jwk, args[3]));
    return;
}

var output = new List<Dictionary<string, string>>();
void Add(string name, string token, SecurityKey pub, string subject)
{
    output.Add(new Dictionary<string, string>
    {
        ["name"] = name,
        ["token"] = token,
        ["publicKey"] = PublicKeyText(pub),
        ["subject"] = subject,
        ["dotnet"] = DotnetVerdict(token, pub, subject),
    });
}

DateTime now = DateTime.UtcNow;
string sub = Guid.NewGuid().ToString("D");

// The documented procedure, as `dotnet monitor generatekey` runs it: ES384, 7 days.
var (es384, es384Pub) = NewKey("ES384");
string generated = Token(es384, "ES384", sub, Epoch(now + TimeSpan.FromDays(7)));
Add("generatekey-ES384", generated, es384Pub, sub);

foreach (string alg in new[] { "ES256", "ES512", "RS256", "RS384", "RS512" })
{
    var (k, pub) = NewKey(alg);
    Add("valid-" + alg, Token(k, alg, sub, Epoch(now + TimeSpan.FromHours(1))), pub, sub);
}

var (other, _) = NewKey("ES384");
Add("wrong-signature", Token(other, "ES384", sub, Epoch(now + TimeSpan.FromHours(1))), es384Pub, sub);
Add("expired", Token(es384, "ES384", sub, Epoch(now - TimeSpan.FromHours(1))), es384Pub, sub);
Add("expired-within-clock-skew", Token(es384, "ES384", sub, Epoch(now - TimeSpan.FromMinutes(1))),
    es384Pub, sub);
Add("alg-none", Token(null, "none", sub, Epoch(now + TimeSpan.FromHours(1))), es384Pub, sub);
Add("no-alg", Token(null, "", sub, Epoch(now + TimeSpan.FromHours(1))), es384Pub, sub);
Add("wrong-subject", generated, es384Pub, Guid.NewGuid().ToString("D"));
Add("wrong-audience", Token(es384, "ES384", sub, Epoch(now + TimeSpan.FromHours(1)), aud: "https://example.com"),
    es384Pub, sub);
Add("wrong-issuer", Token(es384, "ES384", sub, Epoch(now + TimeSpan.FromHours(1)), iss: "https://example.com"),
    es384Pub, sub);
string[] parts = generated.Split('.');
string otherPayload = Token(es384, "ES384", "someone-else", Epoch(now + TimeSpan.FromDays(7))).Split('.')[1];
Add("tampered-payload", parts[0] + "." + otherPayload + "." + parts[2], es384Pub, sub);

foreach (var o in output)
    Console.WriteLine(JsonSerializer.Serialize(o));
